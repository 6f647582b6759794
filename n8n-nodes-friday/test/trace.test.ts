import { describe, expect, it } from 'vitest';

import { Friday } from '../nodes/Friday/Friday.node';
import { metaFromChannelMessage, metaFromDelivery } from '../nodes/shared/delivery';
import { continueTrace, isValidTraceparent, newSpanId, traceHeaders } from '../nodes/shared/trace';
import { delivery, executeHarness, items, ok, published, PUBLISH, PUBLISH_BATCH, publishParams } from './helpers';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CONTINUED = /^00-4bf92f3577b34da6a3ce929d0e0e4736-([0-9a-f]{16})-01$/;

const node = new Friday();

describe('trace context: delivery mapping', () => {
	it('puts metadata.traceparent / tracestate on _friday (null without them)', () => {
		const traced = delivery('1-0', {}, {});
		traced.metadata = { ...traced.metadata, traceparent: TP, tracestate: 'congo=t61' } as never;
		const meta = metaFromDelivery(traced, { group: 'g', ackMode: null, test: false });
		expect([meta.traceparent, meta.tracestate]).toEqual([TP, 'congo=t61']);
		const plain = metaFromDelivery(delivery('1-1', {}), { group: 'g', ackMode: null, test: false });
		expect([plain.traceparent, plain.tracestate]).toEqual([null, null]);
		const old = metaFromDelivery(
			{ stream: 's', id: '1-2', payload: {}, metadata: { source: 'x' } },
			{ group: 'g', ackMode: null, test: false },
		);
		expect([old.traceparent, old.tracestate]).toEqual([null, null]);
		const channel = metaFromChannelMessage(
			{ channel: 'c', payload: {}, metadata: { traceparent: TP } },
			{ test: false },
		);
		expect(channel.traceparent).toBe(TP);
	});
});

describe('trace context: helpers', () => {
	it('validates like the sidecar', () => {
		expect(isValidTraceparent(TP)).toBe(true);
		expect(isValidTraceparent(TP.toUpperCase())).toBe(false);
		expect(isValidTraceparent(`ff${TP.slice(2)}`)).toBe(false);
		expect(isValidTraceparent(`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`)).toBe(false);
		expect(isValidTraceparent(`00-${TRACE_ID}-${'0'.repeat(16)}-01`)).toBe(false);
		expect(isValidTraceparent(42)).toBe(false);
	});

	it('continues a trace: same trace id and flags, a new random span id', () => {
		const a = continueTrace(TP)!;
		const b = continueTrace(TP)!;
		expect(a).toMatch(CONTINUED);
		expect(a).not.toBe(b);
		expect(a.split('-')[2]).not.toBe('00f067aa0ba902b7');
		expect(continueTrace(`00-${TRACE_ID}-00f067aa0ba902b7-00`, 'aaaaaaaaaaaaaaaa')).toBe(
			`00-${TRACE_ID}-aaaaaaaaaaaaaaaa-00`,
		);
		expect(continueTrace('garbage')).toBeNull();
		expect(newSpanId()).toMatch(/^[0-9a-f]{16}$/);
	});

	it('headers: explicit option first, else the item trace, else none', () => {
		expect(traceHeaders(' 00-x ', { traceparent: TP })).toEqual({ traceparent: '00-x' });
		expect(traceHeaders('', { traceparent: TP, tracestate: 'a=1' }, 'bbbbbbbbbbbbbbbb')).toEqual({
			traceparent: `00-${TRACE_ID}-bbbbbbbbbbbbbbbb-01`,
			tracestate: 'a=1',
		});
		expect(traceHeaders(undefined, { traceparent: null })).toEqual({});
		expect(traceHeaders(undefined, undefined)).toEqual({});
		expect(traceHeaders(undefined, { traceparent: 'bad' })).toEqual({});
	});
});

describe('trace context: Friday node publish', () => {
	it("continues the input item's trace (from a Friday Trigger) and sends none without one", async () => {
		const { ctx, sidecar } = executeHarness(
			items({ a: 1, _friday: { id: '1-0', traceparent: TP, tracestate: 'congo=t61' } }, { a: 2 }),
			() => publishParams(),
		);
		sidecar.on('POST', PUBLISH, ok(published('email.received', '9-0')));
		await node.execute.call(ctx);
		const [first, second] = sidecar.calls.map((c) => c.options.headers as Record<string, string>);
		expect(first.traceparent).toMatch(CONTINUED);
		expect(first.traceparent).not.toBe(TP);
		expect(first.tracestate).toBe('congo=t61');
		expect(second.traceparent).toBeUndefined();
		expect(second.tracestate).toBeUndefined();
		expect(first.Accept).toBe('application/json');
		expect(sidecar.calls[0].body).toEqual({
			stream: 'email.received',
			payload: { a: 1 },
			source: 'n8n:workflow:wf-1',
		});
	});

	it('sends the Trace Parent option as given', async () => {
		const explicit = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;
		const { ctx, sidecar } = executeHarness(items({ a: 1, _friday: { traceparent: TP } }), () =>
			publishParams({ publishOptions: { traceParent: explicit } }),
		);
		sidecar.on('POST', PUBLISH, ok(published('email.received', '9-0')));
		await node.execute.call(ctx);
		expect((sidecar.calls[0].options.headers as Record<string, string>).traceparent).toBe(explicit);
	});

	it('batch mode: one call per run of items of the same trace, in order', async () => {
		const other = `00-${'3'.repeat(32)}-${'4'.repeat(16)}-00`;
		const { ctx, sidecar } = executeHarness(
			items(
				{ i: 0, _friday: { traceparent: TP } },
				{ i: 1, _friday: { traceparent: TP } },
				{ i: 2, _friday: { traceparent: other } },
				{ i: 3 },
			),
			() => publishParams({ publishMode: 'batch' }),
		);
		sidecar.on(
			'POST',
			PUBLISH_BATCH,
			ok({ results: [published('email.received', '1-0'), published('email.received', '1-1')] }),
			ok({ results: [published('email.received', '1-2')] }),
			ok({ results: [published('email.received', '1-3')] }),
		);
		const result = await node.execute.call(ctx);
		expect(sidecar.calls.map((c) => (c.body as { events: unknown[] }).events.length)).toEqual([2, 1, 1]);
		const headers = sidecar.calls.map((c) => c.options.headers as Record<string, string>);
		expect(headers[0].traceparent).toMatch(CONTINUED);
		expect(headers[1].traceparent).toMatch(/^00-3{32}-[0-9a-f]{16}-00$/);
		expect(headers[2].traceparent).toBeUndefined();
		expect(result[0].map((r) => r.json.id)).toEqual(['1-0', '1-1', '1-2', '1-3']);
	});
});
