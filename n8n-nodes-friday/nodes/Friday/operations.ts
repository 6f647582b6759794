import type { IDataObject, IExecuteFunctions, INodeExecutionData, JsonObject } from 'n8n-workflow';
import { NodeApiError, NodeOperationError, jsonParse } from 'n8n-workflow';

import { deliveryRequest } from '../shared/delivery';
import { errorMessage, toNodeError } from '../shared/errors';
import { newSpanId, traceHeaders } from '../shared/trace';
import { fridayApiRequest, getFridayBaseUrl, seg } from '../shared/transport';

/** Events per batch call: the sidecar's own limit (MAX_BATCH, 1000 events per batch). */
export const MAX_BATCH_EVENTS = 1000;

export interface PublishBody extends IDataObject {
	stream: string;
	payload: IDataObject;
	source: string;
	idempotency_key?: string;
	correlation_id?: string;
}

interface PublishResponse {
	stream: string;
	kind: string;
	id: string | null;
	duplicate: boolean;
	receivers?: number | null;
}

function errorItem(error: unknown, itemIndex: number): INodeExecutionData {
	return { json: { error: errorMessage(error) }, pairedItem: { item: itemIndex } };
}

function publishOutput(response: PublishResponse): IDataObject {
	return {
		id: response.id ?? null,
		stream: response.stream,
		kind: response.kind,
		duplicate: response.duplicate === true,
		receivers: response.receivers ?? null,
	};
}

/** Reads `a.b.c` from an object; undefined when a step is missing. */
function getPath(source: IDataObject, path: string): unknown {
	let current: unknown = source;
	for (const key of path.split('.')) {
		if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
		current = (current as IDataObject)[key];
	}
	return current;
}

function setPath(target: IDataObject, path: string, value: unknown): void {
	const keys = path.split('.');
	let current = target;
	keys.slice(0, -1).forEach((key) => {
		if (current[key] === null || typeof current[key] !== 'object' || Array.isArray(current[key])) {
			current[key] = {};
		}
		current = current[key] as IDataObject;
	});
	current[keys[keys.length - 1]] = value as IDataObject;
}

function buildPayload(this: IExecuteFunctions, item: INodeExecutionData, i: number): IDataObject {
	const payloadSource = this.getNodeParameter('payloadSource', i, 'item') as string;

	if (payloadSource === 'json') {
		const raw = this.getNodeParameter('payloadJson', i) as unknown;
		let parsed: unknown = raw;
		if (typeof raw === 'string') {
			parsed = jsonParse(raw, {
				errorMessage: 'Payload (JSON) is not valid JSON',
			});
		}
		if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
			throw new NodeOperationError(this.getNode(), 'Payload (JSON) must be a JSON object', {
				itemIndex: i,
			});
		}
		return parsed as IDataObject;
	}

	if (payloadSource === 'fields') {
		const fields = String(this.getNodeParameter('fieldsToInclude', i, ''))
			.split(',')
			.map((field) => field.trim())
			.filter((field) => field !== '');
		if (fields.length === 0) {
			throw new NodeOperationError(this.getNode(), 'No field given in "Fields to Include"', {
				itemIndex: i,
			});
		}
		const payload: IDataObject = {};
		for (const field of fields) {
			const value = getPath(item.json, field);
			if (value !== undefined) setPath(payload, field, value);
		}
		return payload;
	}

	// Whole input item, without the trigger's delivery metadata.
	const payload: IDataObject = { ...item.json };
	delete payload._friday;
	return payload;
}

export function buildPublishBody(
	this: IExecuteFunctions,
	item: INodeExecutionData,
	i: number,
): PublishBody {
	const stream = String(this.getNodeParameter('stream', i, '') ?? '').trim();
	if (stream === '') {
		throw new NodeOperationError(this.getNode(), 'No stream or channel given', { itemIndex: i });
	}
	const options = this.getNodeParameter('publishOptions', i, {}) as IDataObject;
	const source =
		typeof options.source === 'string' && options.source.trim() !== ''
			? options.source.trim()
			: `n8n:workflow:${this.getWorkflow().id ?? 'unsaved'}`;

	const body: PublishBody = {
		stream,
		payload: buildPayload.call(this, item, i),
		source,
	};
	if (typeof options.idempotencyKey === 'string' && options.idempotencyKey !== '') {
		body.idempotency_key = options.idempotencyKey;
	}
	if (typeof options.correlationId === 'string' && options.correlationId !== '') {
		body.correlation_id = options.correlationId;
	}
	return body;
}

/**
 * The trace-context headers of item `i`'s publish: the Trace Parent option as given, else the
 * item's `_friday.traceparent` (from a Friday Trigger) continued with a new span id, else none.
 */
export function publishTraceHeaders(
	this: IExecuteFunctions,
	item: INodeExecutionData,
	i: number,
	spanId?: string,
): Record<string, string> {
	const options = this.getNodeParameter('publishOptions', i, {}) as IDataObject;
	return traceHeaders(options.traceParent, item.json?._friday, spanId);
}

function sameHeaders(a: Record<string, string>, b: Record<string, string>): boolean {
	return a.traceparent === b.traceparent && a.tracestate === b.tracestate;
}

/**
 * Publish event: one call per item, or batch calls of up to 1000 events. A batch call carries one
 * trace context (headers apply to every event of the call): consecutive items of the same trace
 * share a call, and a call ends where the trace changes.
 */
export async function publish(
	this: IExecuteFunctions,
	items: INodeExecutionData[],
): Promise<INodeExecutionData[]> {
	const mode = this.getNodeParameter('publishMode', 0, 'each') as string;
	const baseUrl = await getFridayBaseUrl.call(this);

	if (mode !== 'batch') {
		const output: INodeExecutionData[] = [];
		for (let i = 0; i < items.length; i++) {
			try {
				const body = buildPublishBody.call(this, items[i], i);
				const headers = publishTraceHeaders.call(this, items[i], i);
				const response = await fridayApiRequest.call(
					this,
					'POST',
					'/api/v1/events/publish',
					body,
					undefined,
					{ baseUrl, itemIndex: i, headers },
				);
				output.push({
					json: publishOutput(response as unknown as PublishResponse),
					pairedItem: { item: i },
				});
			} catch (error) {
				if (this.continueOnFail()) {
					output.push(errorItem(error, i));
					continue;
				}
				throw toNodeError(this.getNode(), error, i);
			}
		}
		return output;
	}

	// Batch: build every body first (a bad item fails alone), then send in chunks.
	const results: Array<INodeExecutionData | undefined> = new Array(items.length);
	const pending: Array<{ index: number; body: PublishBody; trace: Record<string, string> }> = [];
	const spanId = newSpanId(); // one publish span per call: the same for a chunk's items
	for (let i = 0; i < items.length; i++) {
		try {
			pending.push({
				index: i,
				body: buildPublishBody.call(this, items[i], i),
				trace: publishTraceHeaders.call(this, items[i], i, spanId),
			});
		} catch (error) {
			if (this.continueOnFail()) {
				results[i] = errorItem(error, i);
				continue;
			}
			throw toNodeError(this.getNode(), error, i);
		}
	}

	const chunks: Array<typeof pending> = [];
	for (const entry of pending) {
		const last = chunks[chunks.length - 1];
		if (last && last.length < MAX_BATCH_EVENTS && sameHeaders(last[0].trace, entry.trace)) {
			last.push(entry);
		} else {
			chunks.push([entry]);
		}
	}

	for (const chunk of chunks) {
		try {
			const response = (await fridayApiRequest.call(
				this,
				'POST',
				'/api/v1/events/publish/batch',
				{ events: chunk.map((entry) => entry.body) },
				undefined,
				{ baseUrl, itemIndex: chunk[0].index, headers: chunk[0].trace },
			)) as unknown as { results?: PublishResponse[] };
			const answers = Array.isArray(response?.results) ? response.results : [];
			if (answers.length !== chunk.length) {
				throw new NodeApiError(this.getNode(), response as unknown as JsonObject, {
					message: `The sidecar answered ${answers.length} results for ${chunk.length} events`,
					itemIndex: chunk[0].index,
				});
			}
			chunk.forEach((entry, position) => {
				results[entry.index] = {
					json: publishOutput(answers[position]),
					pairedItem: { item: entry.index },
				};
			});
		} catch (error) {
			if (this.continueOnFail()) {
				for (const entry of chunk) results[entry.index] = errorItem(error, entry.index);
				continue;
			}
			throw toNodeError(this.getNode(), error, chunk[0].index);
		}
	}

	return results.filter((result): result is INodeExecutionData => result !== undefined);
}

function deliveryParameters(
	this: IExecuteFunctions,
	i: number,
): { stream: string; group: string; id: string } {
	const read = (name: string, label: string): string => {
		const value = this.getNodeParameter(name, i, '') as unknown;
		const text = value === null || value === undefined ? '' : String(value).trim();
		if (text === '') {
			throw new NodeOperationError(
				this.getNode(),
				`${label} is empty. Connect this node after a Friday Trigger (its items carry _friday.stream, _friday.group and _friday.id) or fill the field in.`,
				{ itemIndex: i },
			);
		}
		return text;
	};
	return {
		stream: read('ackStream', 'Stream'),
		group: read('ackGroup', 'Consumer Group'),
		id: read('ackId', 'Event ID'),
	};
}

/**
 * Runs one sidecar call per input item: its output keeps `pairedItem`; a failure becomes an
 * error item with "Continue On Fail", and otherwise stops the node with the sidecar's message.
 */
async function perItem(
	ctx: IExecuteFunctions,
	items: INodeExecutionData[],
	run: (i: number, baseUrl: string) => Promise<IDataObject>,
): Promise<INodeExecutionData[]> {
	const output: INodeExecutionData[] = [];
	const baseUrl = await getFridayBaseUrl.call(ctx);
	for (let i = 0; i < items.length; i++) {
		try {
			output.push({ json: await run(i, baseUrl), pairedItem: { item: i } });
		} catch (error) {
			if (ctx.continueOnFail()) {
				output.push(errorItem(error, i));
				continue;
			}
			throw toNodeError(ctx.getNode(), error, i);
		}
	}
	return output;
}

/** Acknowledge: POST /streams/{stream}/groups/{group}/ack {ids: [id]} (the shared delivery request). */
export async function acknowledge(
	this: IExecuteFunctions,
	items: INodeExecutionData[],
): Promise<INodeExecutionData[]> {
	return await perItem(this, items, async (i, baseUrl) => {
		const { stream, group, id } = deliveryParameters.call(this, i);
		const response = (await deliveryRequest.call(
			this,
			'ack',
			{ stream, group },
			{ ids: [id] },
			{ baseUrl, itemIndex: i },
		)) as { acked?: number };
		return { stream, group, id, acked: Number(response?.acked ?? 0) };
	});
}

/** Reject: POST /streams/{stream}/groups/{group}/nack {id, reason} (the shared delivery request). */
export async function reject(
	this: IExecuteFunctions,
	items: INodeExecutionData[],
): Promise<INodeExecutionData[]> {
	return await perItem(this, items, async (i, baseUrl) => {
		const { stream, group, id } = deliveryParameters.call(this, i);
		const reason = String(this.getNodeParameter('reason', i, '') ?? '').trim();
		const response = (await deliveryRequest.call(
			this,
			'nack',
			{ stream, group },
			{ id, reason: reason === '' ? 'Rejected by the n8n workflow' : reason },
			{ baseUrl, itemIndex: i },
		)) as IDataObject;
		return { stream, group, ...response, id: response?.id ?? id };
	});
}

/** Get stream status: GET /streams/{stream}/status. */
export async function getStreamStatus(
	this: IExecuteFunctions,
	items: INodeExecutionData[],
): Promise<INodeExecutionData[]> {
	return await perItem(this, items, async (i, baseUrl) => {
		const stream = String(this.getNodeParameter('statusStream', i, '') ?? '').trim();
		if (stream === '') {
			throw new NodeOperationError(this.getNode(), 'No stream given', { itemIndex: i });
		}
		return (await fridayApiRequest.call(
			this,
			'GET',
			`/api/v1/streams/${seg(stream)}/status`,
			undefined,
			undefined,
			{ baseUrl, itemIndex: i },
		)) as IDataObject;
	});
}
