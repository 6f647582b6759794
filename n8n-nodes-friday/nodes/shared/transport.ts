import type {
	IDataObject,
	IExecuteFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	INode,
	ITriggerFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

/** Name of the credential type every Friday node uses. */
export const FRIDAY_CREDENTIAL = 'fridayApi';

/** Every n8n context that may talk to the sidecar. */
export type FridayContext = IExecuteFunctions | ILoadOptionsFunctions | ITriggerFunctions;

export interface FridayRequestOptions {
	/** Sidecar base URL; read from the credential when not given. */
	baseUrl?: string;
	/** HTTP timeout in milliseconds (n8n sets none by default). */
	timeout?: number;
	/** Aborts the request (used by the trigger's closeFunction). */
	abortSignal?: AbortSignal;
	/** `stream`: the body is returned as an async-iterable stream (SSE). */
	encoding?: 'stream';
	/** Item the request belongs to, for error reporting. */
	itemIndex?: number;
	/** Extra request headers (the publish's `traceparent` / `tracestate`). */
	headers?: Record<string, string>;
}

/** Body of every sidecar error: `{"error": {"code", "message", "retriable", "field"}}`. */
export interface SidecarErrorBody {
	error?: {
		code?: string;
		message?: string;
		retriable?: boolean;
		field?: string | null;
	};
}

interface FullResponse {
	body: unknown;
	statusCode: number;
	headers?: IDataObject;
}

const MAX_ERROR_BODY_BYTES = 64 * 1024;

export function normalizeBaseUrl(url: string): string {
	return String(url ?? '')
		.trim()
		.replace(/\/+$/, '');
}

/** Reads the sidecar base URL from the Friday API credential. */
export async function getFridayBaseUrl(this: FridayContext): Promise<string> {
	const credentials = await this.getCredentials<{ baseUrl?: string }>(FRIDAY_CREDENTIAL);
	const baseUrl = normalizeBaseUrl(credentials.baseUrl ?? '');
	return baseUrl === '' ? 'http://localhost:8000' : baseUrl;
}

/** Human words for the network error codes, kept out of the message on purpose. */
const NETWORK_ERRORS: Record<string, string> = {
	ECONNREFUSED: 'connection refused',
	ECONNRESET: 'connection reset',
	ENOTFOUND: 'host not found',
	EAI_AGAIN: 'host name lookup failed',
	ETIMEDOUT: 'timed out',
	ECONNABORTED: 'timed out',
	EHOSTUNREACH: 'host unreachable',
};

function findNetworkCode(error: unknown): string | undefined {
	const seen = new Set<unknown>();
	let current: unknown = error;
	while (current && typeof current === 'object' && !seen.has(current)) {
		seen.add(current);
		const candidate = current as { code?: unknown; cause?: unknown; message?: unknown };
		if (typeof candidate.code === 'string' && NETWORK_ERRORS[candidate.code]) {
			return candidate.code;
		}
		if (typeof candidate.message === 'string') {
			const match =
				/\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNABORTED|EHOSTUNREACH)\b/.exec(
					candidate.message,
				);
			if (match) return match[1];
		}
		current = candidate.cause;
	}
	return undefined;
}

/** Turns a sidecar error response into a NodeApiError carrying the sidecar's own message. */
export function sidecarApiError(
	node: INode,
	statusCode: number,
	body: unknown,
	request: { method: string; path: string; itemIndex?: number; detail?: string },
): NodeApiError {
	let parsed: unknown = body;
	if (typeof parsed === 'string') {
		try {
			parsed = JSON.parse(parsed);
		} catch {
			// Not JSON (a proxy's HTML page, for example): shown as text below.
		}
	}
	const sidecarError =
		parsed && typeof parsed === 'object' && !Array.isArray(parsed)
			? (parsed as SidecarErrorBody).error
			: undefined;

	let message: string;
	const details: string[] = [
		request.detail ?? `${request.method} ${request.path} answered HTTP ${statusCode}`,
	];
	if (sidecarError && typeof sidecarError.message === 'string' && sidecarError.message !== '') {
		message = sidecarError.message;
		if (sidecarError.code) details.push(`code: ${sidecarError.code}`);
		if (sidecarError.field) details.push(`field: ${sidecarError.field}`);
		if (sidecarError.retriable !== undefined) details.push(`retriable: ${sidecarError.retriable}`);
	} else if (typeof parsed === 'string' && parsed.trim() !== '') {
		message = `Friday sidecar answered HTTP ${statusCode}: ${parsed.trim().slice(0, 300)}`;
	} else {
		message = `Friday sidecar answered HTTP ${statusCode}`;
	}

	const errorResponse: JsonObject = {
		httpCode: String(statusCode),
		message,
		error: (sidecarError ?? null) as JsonObject | null,
	};
	return new NodeApiError(node, errorResponse, {
		message,
		description: details.join(', '),
		httpCode: String(statusCode),
		itemIndex: request.itemIndex,
	});
}

/** Turns a failure to get any answer (network, timeout) into a NodeApiError. */
export function transportError(
	node: INode,
	error: unknown,
	request: { method: string; url: string; itemIndex?: number },
): NodeApiError {
	const code = findNetworkCode(error);
	const reason = code ? NETWORK_ERRORS[code] : undefined;
	const original =
		error && typeof error === 'object' && typeof (error as Error).message === 'string'
			? (error as Error).message
			: String(error);
	const message = `Cannot reach the Friday sidecar at ${request.url}${reason ? `: ${reason}` : ''}`;
	return new NodeApiError(node, { message, original } as JsonObject, {
		message,
		description: `${request.method} ${request.url} failed${code ? ` (${code})` : ''}: ${original}. Check the Base URL of the Friday API credential and that the sidecar is running.`,
		itemIndex: request.itemIndex,
	});
}

/** Reads at most MAX_ERROR_BODY_BYTES of a streamed body as text. */
export async function readStreamText(stream: unknown): Promise<string> {
	if (typeof stream === 'string') return stream;
	if (!stream || typeof (stream as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
		return '';
	}
	const decoder = new TextDecoder();
	let text = '';
	for await (const chunk of stream as AsyncIterable<Uint8Array | string>) {
		text += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
		if (text.length >= MAX_ERROR_BODY_BYTES) break;
	}
	const destroyable = stream as { destroy?: () => void };
	if (typeof destroyable.destroy === 'function') destroyable.destroy();
	return text;
}

/**
 * The one function every Friday node uses to call the sidecar.
 *
 * Authentication is added by the credential's `authenticate` function through
 * `httpRequestWithAuthentication`. Sidecar error bodies become a NodeApiError whose
 * message is the sidecar's message; network failures become a NodeApiError that says
 * which URL could not be reached.
 */
export async function fridayApiRequest<T = IDataObject>(
	this: FridayContext,
	method: IHttpRequestMethods,
	path: string,
	body?: IDataObject,
	qs?: IDataObject,
	options: FridayRequestOptions = {},
): Promise<T> {
	const baseUrl = options.baseUrl ?? (await getFridayBaseUrl.call(this));
	const url = `${normalizeBaseUrl(baseUrl)}${path}`;
	const requestOptions: IHttpRequestOptions = {
		method,
		url,
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		headers: {
			...(options.headers ?? {}),
			Accept: options.encoding === 'stream' ? 'text/event-stream' : 'application/json',
		},
	};
	if (options.encoding === 'stream') {
		requestOptions.encoding = 'stream';
	} else {
		requestOptions.json = true;
	}
	if (body !== undefined) requestOptions.body = body;
	if (qs !== undefined) requestOptions.qs = qs;
	if (options.timeout !== undefined) requestOptions.timeout = options.timeout;
	if (options.abortSignal !== undefined) requestOptions.abortSignal = options.abortSignal;

	let response: FullResponse;
	try {
		response = (await this.helpers.httpRequestWithAuthentication.call(
			this,
			FRIDAY_CREDENTIAL,
			requestOptions,
		)) as FullResponse;
	} catch (error) {
		throw transportError(this.getNode(), error, { method, url, itemIndex: options.itemIndex });
	}

	const statusCode = Number(response?.statusCode ?? 0);
	if (statusCode < 200 || statusCode >= 300) {
		const errorBody =
			options.encoding === 'stream' ? await readStreamText(response?.body) : response?.body;
		throw sidecarApiError(this.getNode(), statusCode, errorBody, {
			method,
			path,
			itemIndex: options.itemIndex,
		});
	}
	return response.body as T;
}

/** Encodes one path segment (stream, group, channel names). */
export function seg(value: string): string {
	return encodeURIComponent(value);
}
