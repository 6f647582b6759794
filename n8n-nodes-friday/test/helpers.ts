import type {
	IExecuteFunctions,
	IHttpRequestOptions,
	INode,
	INodeExecutionData,
	IRun,
	ITriggerFunctions,
	IWorkflowMetadata,
} from 'n8n-workflow';
import { vi } from 'vitest';
import { mockDeep } from 'vitest-mock-extended';

export const BASE_URL = 'http://sidecar.test:8000';
export const API_KEY = 'test-key';

/** The deferred promise n8n hands to emit(); n8n-workflow 2.x no longer exports one. */
export interface Deferred<T> {
	promise: Promise<T>;
	resolve: (value: T | PromiseLike<T>) => void;
	reject: (error: Error) => void;
}

export function createDeferred<T = void>(): Deferred<T> {
	let resolve!: (value: T | PromiseLike<T>) => void;
	let reject!: (error: Error) => void;
	const promise = new Promise<T>((res, rej) => {
		resolve = res;
		reject = rej;
	});
	return { promise, resolve, reject };
}

/** One HTTP call as the node handed it to httpRequestWithAuthentication. */
export interface RecordedCall {
	credentialType: string;
	method: string;
	url: string;
	path: string;
	body: unknown;
	qs: unknown;
	timeout: number | undefined;
	encoding: string | undefined;
	abortSignal: AbortSignal | undefined;
	options: IHttpRequestOptions;
}

export interface FakeResponse {
	statusCode: number;
	body: unknown;
	headers?: Record<string, string>;
}

type Handler = (call: RecordedCall) => Promise<FakeResponse> | FakeResponse;

export function ok(body: unknown): FakeResponse {
	return { statusCode: 200, body };
}

export function sidecarError(statusCode: number, code: string, message: string): FakeResponse {
	return { statusCode, body: { error: { code, message, retriable: false, field: null } } };
}

/** A network failure like the one axios raises for a refused connection. */
export function connectionRefused(url = BASE_URL): Error {
	return Object.assign(new Error(`connect ECONNREFUSED ${url.replace('http://', '')}`), {
		code: 'ECONNREFUSED',
	});
}

/** A request that only ends when its abortSignal fires (like a long poll with no events). */
export async function hangUntilAborted(call: RecordedCall): Promise<FakeResponse> {
	return await new Promise<FakeResponse>((_resolve, reject) => {
		const signal = call.abortSignal;
		if (!signal) return;
		const fail = () =>
			reject(Object.assign(new Error('canceled'), { code: 'ERR_CANCELED', name: 'CanceledError' }));
		if (signal.aborted) fail();
		else signal.addEventListener('abort', fail, { once: true });
	});
}

/**
 * An in-memory sidecar: records every call and answers from per-route queues of handlers
 * (first match wins; the last handler of a queue stays as the default).
 */
export class FakeSidecar {
	readonly calls: RecordedCall[] = [];

	private readonly routes: Array<{ method: string; path: RegExp; queue: Handler[] }> = [];

	readonly request = vi.fn(async (credentialType: string, options: IHttpRequestOptions) => {
		const url = String(options.url);
		const call: RecordedCall = {
			credentialType,
			method: String(options.method ?? 'GET'),
			url,
			path: url.startsWith(BASE_URL) ? url.slice(BASE_URL.length) : url,
			body: options.body,
			qs: options.qs,
			timeout: options.timeout,
			encoding: options.encoding,
			abortSignal: options.abortSignal as AbortSignal | undefined,
			options,
		};
		this.calls.push(call);
		const route = this.routes.find((r) => r.method === call.method && r.path.test(call.path));
		if (!route) {
			return sidecarError(404, 'not_found', `no fake route for ${call.method} ${call.path}`);
		}
		const handler = route.queue.length > 1 ? route.queue.shift()! : route.queue[0];
		return await handler(call);
	});

	/** Adds handlers for a route; they answer in order, the last one repeats. */
	on(method: string, path: RegExp, ...handlers: Array<Handler | FakeResponse>): this {
		const queue = handlers.map((h) => (typeof h === 'function' ? h : () => h));
		const existing = this.routes.find((r) => r.method === method && r.path.source === path.source);
		if (existing) existing.queue.push(...queue);
		else this.routes.push({ method, path, queue });
		return this;
	}

	callsTo(method: string, path: RegExp): RecordedCall[] {
		return this.calls.filter((call) => call.method === method && path.test(call.path));
	}
}

export const PUBLISH = /^\/api\/v1\/events\/publish$/;
export const PUBLISH_BATCH = /^\/api\/v1\/events\/publish\/batch$/;

/** Input items of a node run, one per JSON object. */
export function items(...json: Array<Record<string, unknown>>): INodeExecutionData[] {
	return json.map((j) => ({ json: j as INodeExecutionData['json'] }));
}

/** The Friday node's parameters for a publish of each item to email.received, with overrides. */
export function publishParams(extra: Record<string, unknown> = {}) {
	return {
		operation: 'publish',
		stream: 'email.received',
		payloadSource: 'item',
		publishMode: 'each',
		publishOptions: {},
		...extra,
	};
}

/** The sidecar's answer to one publish. */
export function published(stream: string, id: string | null, kind = 'stream', duplicate = false) {
	return { stream, kind, id, duplicate, receivers: kind === 'channel' ? 2 : null };
}

export const READ = /^\/api\/v1\/streams\/[^/]+\/groups\/[^/]+\/read$/;
export const ACK = /^\/api\/v1\/streams\/[^/]+\/groups\/[^/]+\/ack$/;
export const EXTEND = /\/groups\/[^/]+\/extend$/;
export const NACK = /^\/api\/v1\/streams\/[^/]+\/groups\/[^/]+\/nack$/;
export const RELEASE = /^\/api\/v1\/streams\/[^/]+\/groups\/[^/]+\/release$/;

export function testNode(name: string, type: string): INode {
	return {
		id: `${type}-id`,
		name,
		type,
		typeVersion: 1,
		position: [0, 0],
		parameters: {},
	};
}

export function successRun(): IRun {
	return {
		data: { resultData: { runData: {} } },
		mode: 'trigger',
		startedAt: new Date(),
		status: 'success',
	} as unknown as IRun;
}

export function failedRun(message: string): IRun {
	return {
		data: { resultData: { runData: {}, error: { message, name: 'NodeOperationError' } } },
		mode: 'trigger',
		startedAt: new Date(),
		status: 'error',
	} as unknown as IRun;
}

export function delivery(id: string, payload: Record<string, unknown>, extra: object = {}) {
	return {
		stream: 'email.received',
		group: 'email-processor',
		consumer: 'n8n-wf-1',
		id,
		delivery_count: 1,
		payload,
		metadata: {
			event_id: null,
			source: 'gmail',
			correlation_id: 'corr-1',
			published_at: '2026-11-26T04:00:00.000Z',
			published_at_ms: 1795492800000,
			encoding: 'friday',
			traceparent: null,
			tracestate: null,
		},
		...extra,
	};
}

export interface TriggerHarness {
	ctx: ReturnType<typeof mockDeep<ITriggerFunctions>>;
	sidecar: FakeSidecar;
	/** Every emit: the items, and the done promise n8n would resolve with the run. */
	emits: Array<{ items: INodeExecutionData[][]; done?: Deferred<IRun> }>;
	/** Number of getNodeParameter calls so far. */
	parameterReads: () => number;
}

/** A mocked ITriggerFunctions wired to a FakeSidecar. */
export function triggerHarness(
	parameters: Record<string, unknown>,
	mode: 'trigger' | 'manual' = 'trigger',
): TriggerHarness {
	const ctx = mockDeep<ITriggerFunctions>();
	const sidecar = new FakeSidecar();
	const emits: TriggerHarness['emits'] = [];

	ctx.getNodeParameter.mockImplementation(((name: string, fallback?: unknown) =>
		name in parameters ? parameters[name] : fallback) as never);
	ctx.getMode.mockReturnValue(mode);
	ctx.getNode.mockReturnValue(testNode('Friday Trigger', 'n8n-nodes-friday.fridayTrigger'));
	ctx.getWorkflow.mockReturnValue({ id: 'wf-1', name: 'Test', active: true } as IWorkflowMetadata);
	ctx.getCredentials.mockResolvedValue({ baseUrl: `${BASE_URL}/`, apiKey: API_KEY } as never);
	ctx.helpers.httpRequestWithAuthentication.mockImplementation(sidecar.request as never);
	ctx.helpers.createDeferredPromise.mockImplementation((() => createDeferred()) as never);
	ctx.emit.mockImplementation((items, _responsePromise, done) => {
		emits.push({ items, done: done as unknown as Deferred<IRun> | undefined });
	});

	return {
		ctx,
		sidecar,
		emits,
		parameterReads: () => ctx.getNodeParameter.mock.calls.length,
	};
}

/** Per-item parameters for a mocked IExecuteFunctions. */
export type ItemParameters =
	| Record<string, unknown>
	| ((itemIndex: number) => Record<string, unknown>);

export interface ExecuteHarness {
	ctx: ReturnType<typeof mockDeep<IExecuteFunctions>>;
	sidecar: FakeSidecar;
}

export function executeHarness(
	items: INodeExecutionData[],
	parameters: ItemParameters,
	options: { continueOnFail?: boolean } = {},
): ExecuteHarness {
	const ctx = mockDeep<IExecuteFunctions>();
	const sidecar = new FakeSidecar();
	const paramsFor = (i: number) => (typeof parameters === 'function' ? parameters(i) : parameters);

	ctx.getInputData.mockReturnValue(items);
	ctx.getNodeParameter.mockImplementation(((name: string, i: number, fallback?: unknown) => {
		const params = paramsFor(i);
		const value = name in params ? params[name] : fallback;
		if (value instanceof Error) throw value;
		return value;
	}) as never);
	ctx.continueOnFail.mockReturnValue(options.continueOnFail ?? false);
	ctx.getNode.mockReturnValue(testNode('Friday', 'n8n-nodes-friday.friday'));
	ctx.getWorkflow.mockReturnValue({ id: 'wf-1', name: 'Test', active: false } as IWorkflowMetadata);
	ctx.getCredentials.mockResolvedValue({ baseUrl: BASE_URL, apiKey: API_KEY } as never);
	ctx.helpers.httpRequestWithAuthentication.mockImplementation(sidecar.request as never);
	return { ctx, sidecar };
}

/** Lets queued promise callbacks run (several turns of the microtask queue). */
export async function flush(turns = 20): Promise<void> {
	for (let i = 0; i < turns; i++) await Promise.resolve();
}
