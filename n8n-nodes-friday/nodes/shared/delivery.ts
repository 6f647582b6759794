import type { IDataObject, INodeExecutionData } from 'n8n-workflow';

import type { FridayContext } from './transport';
import { fridayApiRequest, seg } from './transport';

/**
 * HTTP timeout of one acknowledge, reject or keep-alive call. They answer at once (no long
 * poll), so this only bounds a sidecar that hangs; the caller retries or the event is
 * delivered again.
 */
export const DELIVERY_REQUEST_TIMEOUT_MS = 15_000;

/**
 * HTTP timeout of one release (giving back deliveries never emitted). It runs while the trigger
 * closes, so it is kept short: a sidecar that does not answer in time delivers those events
 * again after its claim idle time instead (counting that delivery).
 */
export const RELEASE_REQUEST_TIMEOUT_MS = 5_000;

/**
 * What can be done to a delivery of a consumer group: acknowledge, reject, keep in progress,
 * or give back (release) one never handed to an execution.
 */
export type DeliveryAction = 'ack' | 'nack' | 'extend' | 'release';

/**
 * The one request for acknowledging (`ack`), rejecting (`nack`), keeping in progress
 * (`extend`) and giving back (`release`) deliveries:
 * `POST /api/v1/streams/{stream}/groups/{group}/{action}` through fridayApiRequest, with
 * DELIVERY_REQUEST_TIMEOUT_MS (RELEASE_REQUEST_TIMEOUT_MS for a release). The sidecar takes at
 * most 1000 ids per ack or extend, and 1000 deliveries per release (its MAX_ACK_IDS).
 */
export async function deliveryRequest<T = IDataObject>(
	this: FridayContext,
	action: DeliveryAction,
	target: { stream: string; group: string },
	body: IDataObject,
	options: { baseUrl?: string; abortSignal?: AbortSignal; itemIndex?: number } = {},
): Promise<T> {
	return (await fridayApiRequest.call(
		this,
		'POST',
		`/api/v1/streams/${seg(target.stream)}/groups/${seg(target.group)}/${action}`,
		body,
		undefined,
		{
			...options,
			timeout: action === 'release' ? RELEASE_REQUEST_TIMEOUT_MS : DELIVERY_REQUEST_TIMEOUT_MS,
		},
	)) as T;
}

/** Metadata block the sidecar attaches to every event. */
export interface SidecarEventMetadata {
	event_id?: string | null;
	source?: string | null;
	correlation_id?: string | null;
	published_at?: string | null;
	published_at_ms?: number | null;
	encoding?: string | null;
	traceparent?: string | null;
	tracestate?: string | null;
	[key: string]: unknown;
}

/** One entry of `POST .../read` (`deliveries[]`) or `GET .../next` (`event`). */
export interface SidecarDelivery {
	stream: string;
	group?: string;
	consumer?: string;
	id: string;
	delivery_count?: number;
	payload: unknown;
	metadata?: SidecarEventMetadata | null;
}

/** One SSE message of `GET /api/v1/channels/{channel}/subscribe`. */
export interface SidecarChannelMessage {
	channel: string;
	payload: unknown;
	metadata?: SidecarEventMetadata | null;
}

export type FridayEventKind = 'stream' | 'channel';

export type AckMode =
	| 'immediately'
	| 'executionFinishes'
	| 'executionFinishesSuccessfully'
	| 'laterInWorkflow';

/**
 * The `_friday` object the Friday Trigger puts on every item it outputs (unless the
 * output is set to "Payload Only"). This is the one place the shape is defined.
 *
 * The Friday node's Acknowledge / Reject operations read `stream`, `group` and `id`
 * from it by default (`{{ $json._friday.stream }}`, `{{ $json._friday.group }}`,
 * `{{ $json._friday.id }}`).
 */
export interface FridayMeta {
	/** `stream` for a critical stream (consumer group), `channel` for Pub/Sub. */
	kind: FridayEventKind;
	/** Stream or channel name. */
	stream: string;
	/** Consumer group the event was read with; null for channels. */
	group: string | null;
	/** Consumer name the event was read as; null for channels and test events. */
	consumer: string | null;
	/** Redis entry id, e.g. `1717000000000-0`; null for channels. */
	id: string | null;
	/** How many times the sidecar delivered this entry (1 on first delivery; 0 for test events). */
	deliveryCount: number;
	/** Publish time, ISO 8601, or null. */
	publishedAt: string | null;
	/** Publish time in epoch milliseconds, or null. */
	publishedAtMs: number | null;
	correlationId: string | null;
	eventId: string | null;
	source: string | null;
	/**
	 * W3C traceparent the publisher gave (its trace), or null. The Friday node's publish from
	 * this item continues that trace.
	 */
	traceparent: string | null;
	/** W3C tracestate the publisher gave, or null. */
	tracestate: string | null;
	/** Acknowledge mode of the trigger that emitted the item. */
	ackMode: AckMode | null;
	/** True for the event shown by "Listen for test event" (never read through the group). */
	test: boolean;
}

export type OutputShape = 'payloadWithMetadata' | 'payloadOnly';

function str(value: unknown): string | null {
	return typeof value === 'string' && value !== '' ? value : null;
}

function num(value: unknown): number | null {
	return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function metaFromDelivery(
	delivery: SidecarDelivery,
	options: { group: string | null; ackMode: AckMode | null; test: boolean },
): FridayMeta {
	const metadata = delivery.metadata ?? {};
	return {
		kind: 'stream',
		stream: delivery.stream,
		group: delivery.group ?? options.group,
		consumer: delivery.consumer ?? null,
		id: delivery.id,
		deliveryCount: typeof delivery.delivery_count === 'number' ? delivery.delivery_count : 0,
		publishedAt: str(metadata.published_at),
		publishedAtMs: num(metadata.published_at_ms),
		correlationId: str(metadata.correlation_id),
		eventId: str(metadata.event_id),
		source: str(metadata.source),
		traceparent: str(metadata.traceparent),
		tracestate: str(metadata.tracestate),
		ackMode: options.ackMode,
		test: options.test,
	};
}

export function metaFromChannelMessage(
	message: SidecarChannelMessage,
	options: { test: boolean },
): FridayMeta {
	const metadata = message.metadata ?? {};
	return {
		kind: 'channel',
		stream: message.channel,
		group: null,
		consumer: null,
		id: null,
		deliveryCount: 0,
		publishedAt: str(metadata.published_at),
		publishedAtMs: num(metadata.published_at_ms),
		correlationId: str(metadata.correlation_id),
		eventId: str(metadata.event_id),
		source: str(metadata.source),
		traceparent: str(metadata.traceparent),
		tracestate: str(metadata.tracestate),
		ackMode: null,
		test: options.test,
	};
}

/**
 * Builds the item the trigger emits: the payload's fields at the top level of `json`
 * (a payload that is not a JSON object is put under `payload`), plus `_friday`.
 */
export function buildEventItem(
	payload: unknown,
	meta: FridayMeta,
	output: OutputShape,
): INodeExecutionData {
	const json: IDataObject =
		payload && typeof payload === 'object' && !Array.isArray(payload)
			? { ...(payload as IDataObject) }
			: { payload: payload as IDataObject };
	if (output === 'payloadWithMetadata' || meta.ackMode === 'laterInWorkflow') {
		json._friday = meta as unknown as IDataObject;
	}
	return { json };
}
