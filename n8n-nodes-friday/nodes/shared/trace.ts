import { randomBytes } from 'crypto';

/**
 * W3C trace context (https://www.w3.org/TR/trace-context/) for the Friday node's publish.
 *
 * The Friday Trigger outputs the `traceparent` / `tracestate` the publisher gave in
 * `_friday.traceparent` / `_friday.tracestate`. A publish from an item that carries one continues
 * that trace: the sidecar gets a `traceparent` with the same trace id and flags and a new random
 * parent span id (this publish), and the same `tracestate`.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** True for a traceparent the sidecar accepts: the W3C shape, version not ff, ids not all zeros. */
export function isValidTraceparent(value: unknown): value is string {
	if (typeof value !== 'string') return false;
	const match = TRACEPARENT.exec(value);
	return (
		match !== null && match[1] !== 'ff' && !/^0+$/.test(match[2]) && !/^0+$/.test(match[3])
	);
}

/** A new random span id: 16 lowercase hex digits, never all zeros. */
export function newSpanId(): string {
	for (;;) {
		const id = randomBytes(8).toString('hex');
		if (!/^0+$/.test(id)) return id;
	}
}

/**
 * A traceparent continuing `parent` (same version-00 trace id and flags, `spanId` as the parent
 * id), or null when `parent` is not a valid traceparent.
 */
export function continueTrace(parent: unknown, spanId: string = newSpanId()): string | null {
	if (!isValidTraceparent(parent)) return null;
	const [, , traceId, , flags] = TRACEPARENT.exec(parent) as RegExpExecArray;
	return `00-${traceId}-${spanId}-${flags}`;
}

/** The trace context a publish continues: the input item's (from a Friday Trigger), or none. */
export interface TraceContext {
	traceparent: string;
	tracestate?: string;
}

/**
 * The headers of a publish: an explicit Trace Parent option is sent as given (the sidecar checks
 * it); else the item's `_friday.traceparent` is continued with a new span id; else none.
 */
export function traceHeaders(
	explicit: unknown,
	friday: unknown,
	spanId?: string,
): Record<string, string> {
	if (typeof explicit === 'string' && explicit.trim() !== '') {
		return { traceparent: explicit.trim() };
	}
	if (!friday || typeof friday !== 'object' || Array.isArray(friday)) return {};
	const meta = friday as { traceparent?: unknown; tracestate?: unknown };
	const traceparent = continueTrace(meta.traceparent, spanId);
	if (traceparent === null) return {};
	const headers: Record<string, string> = { traceparent };
	if (typeof meta.tracestate === 'string' && meta.tracestate !== '') {
		headers.tracestate = meta.tracestate;
	}
	return headers;
}
