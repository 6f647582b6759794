import { NodeApiError } from 'n8n-workflow';
import { describe, expect, it } from 'vitest';

import { Friday } from '../nodes/Friday/Friday.node';
import { DELIVERY_REQUEST_TIMEOUT_MS } from '../nodes/shared/delivery';
import {
	BASE_URL,
	connectionRefused,
	executeHarness,
	items,
	ok,
	published,
	PUBLISH,
	PUBLISH_BATCH,
	publishParams,
	sidecarError,
} from './helpers';

const node = new Friday();

describe('Friday node description', () => {
	it('is usable as a tool and uses the Friday credential', () => {
		expect(node.description.usableAsTool).toBe(true);
		expect(node.description.credentials).toEqual([{ name: 'fridayApi', required: true }]);
		const operation = node.description.properties.find((p) => p.name === 'operation');
		expect(operation?.options?.map((o) => (o as { value: string }).value).sort()).toEqual([
			'acknowledge',
			'getStreamStatus',
			'publish',
			'reject',
		]);
	});

	it("reads the delivery from the trigger's _friday object by default", () => {
		const defaults = Object.fromEntries(
			node.description.properties
				.filter((p) => ['ackStream', 'ackGroup', 'ackId'].includes(p.name))
				.map((p) => [p.name, p.default]),
		);
		expect(defaults).toEqual({
			ackStream: '={{ $json._friday.stream }}',
			ackGroup: '={{ $json._friday.group }}',
			ackId: '={{ $json._friday.id }}',
		});
	});
});

describe('Friday node: publish', () => {
	it('one event per item: the whole item (without _friday), default source, pairedItem', async () => {
		const { ctx, sidecar } = executeHarness(
			items({ email_id: 'a', _friday: { id: '1-0' } }, { email_id: 'b' }),
			(i) =>
				publishParams({
					publishOptions: i === 1 ? { idempotencyKey: 'k-b', correlationId: 'c-b' } : {},
				}),
		);
		sidecar.on(
			'POST',
			PUBLISH,
			ok(published('email.received', '100-0')),
			ok(published('email.received', '100-0', 'stream', true)),
		);

		const result = await node.execute.call(ctx);

		expect(sidecar.calls.map((c) => [c.method, c.url, c.body])).toEqual([
			[
				'POST',
				`${BASE_URL}/api/v1/events/publish`,
				{ stream: 'email.received', payload: { email_id: 'a' }, source: 'n8n:workflow:wf-1' },
			],
			[
				'POST',
				`${BASE_URL}/api/v1/events/publish`,
				{
					stream: 'email.received',
					payload: { email_id: 'b' },
					source: 'n8n:workflow:wf-1',
					idempotency_key: 'k-b',
					correlation_id: 'c-b',
				},
			],
		]);
		expect(result).toEqual([
			[
				{
					json: {
						id: '100-0',
						stream: 'email.received',
						kind: 'stream',
						duplicate: false,
						receivers: null,
					},
					pairedItem: { item: 0 },
				},
				{
					json: {
						id: '100-0',
						stream: 'email.received',
						kind: 'stream',
						duplicate: true,
						receivers: null,
					},
					pairedItem: { item: 1 },
				},
			],
		]);
	});

	it('to a channel, with selected (nested) fields and a custom source', async () => {
		const { ctx, sidecar } = executeHarness(
			items({ file: 'a.pdf', size: 3, owner: { name: 'x', id: 7 } }),
			publishParams({
				stream: 'file.uploaded',
				payloadSource: 'fields',
				fieldsToInclude: 'file, owner.name, missing',
				publishOptions: { source: 'nas-watcher' },
			}),
		);
		sidecar.on('POST', PUBLISH, ok(published('file.uploaded', null, 'channel')));
		const [[out]] = await node.execute.call(ctx);
		expect(sidecar.calls[0].body).toEqual({
			stream: 'file.uploaded',
			payload: { file: 'a.pdf', owner: { name: 'x' } },
			source: 'nas-watcher',
		});
		expect(out.json).toEqual({
			id: null,
			stream: 'file.uploaded',
			kind: 'channel',
			duplicate: false,
			receivers: 2,
		});
	});

	it('with a JSON payload parameter', async () => {
		const { ctx, sidecar } = executeHarness(
			items({}),
			publishParams({ payloadSource: 'json', payloadJson: '{"level": "high", "n": [1, 2]}' }),
		);
		sidecar.on('POST', PUBLISH, ok(published('email.received', '1-1')));
		await node.execute.call(ctx);
		expect((sidecar.calls[0].body as { payload: unknown }).payload).toEqual({
			level: 'high',
			n: [1, 2],
		});
	});

	it('batch mode: one batch call, results mapped back to their items', async () => {
		const { ctx, sidecar } = executeHarness(
			items({ n: 0 }, { n: 1 }, { n: 2 }),
			publishParams({ publishMode: 'batch' }),
		);
		sidecar.on(
			'POST',
			PUBLISH_BATCH,
			ok({
				results: [
					published('email.received', '1-0'),
					published('email.received', '1-1'),
					published('email.received', '1-2'),
				],
			}),
		);
		const [out] = await node.execute.call(ctx);
		expect(sidecar.calls).toHaveLength(1);
		expect(sidecar.calls[0].url).toBe(`${BASE_URL}/api/v1/events/publish/batch`);
		expect(sidecar.calls[0].body).toEqual({
			events: [0, 1, 2].map((n) => ({
				stream: 'email.received',
				payload: { n },
				source: 'n8n:workflow:wf-1',
			})),
		});
		expect(out.map((o) => [o.json.id, o.pairedItem])).toEqual([
			['1-0', { item: 0 }],
			['1-1', { item: 1 }],
			['1-2', { item: 2 }],
		]);
	});

	it('batch mode with continueOnFail: a bad item fails alone, the others go in the batch', async () => {
		const { ctx, sidecar } = executeHarness(
			items({ n: 0 }, { n: 1 }, { n: 2 }),
			(i) =>
				publishParams({
					publishMode: 'batch',
					payloadSource: 'json',
					payloadJson: i === 1 ? '{not json' : `{"n": ${i}}`,
				}),
			{ continueOnFail: true },
		);
		sidecar.on(
			'POST',
			PUBLISH_BATCH,
			ok({ results: [published('email.received', '2-0'), published('email.received', '2-2')] }),
		);
		const [out] = await node.execute.call(ctx);
		expect((sidecar.calls[0].body as { events: unknown[] }).events).toEqual([
			{ stream: 'email.received', payload: { n: 0 }, source: 'n8n:workflow:wf-1' },
			{ stream: 'email.received', payload: { n: 2 }, source: 'n8n:workflow:wf-1' },
		]);
		expect(out).toEqual([
			{ json: expect.objectContaining({ id: '2-0' }), pairedItem: { item: 0 } },
			{ json: { error: 'Payload (JSON) is not valid JSON' }, pairedItem: { item: 1 } },
			{ json: expect.objectContaining({ id: '2-2' }), pairedItem: { item: 2 } },
		]);
	});

	it('batch mode: more than 1000 items are sent in several calls', async () => {
		const many = Array.from({ length: 1001 }, (_, n) => ({ n }));
		const { ctx, sidecar } = executeHarness(
			items(...many),
			publishParams({ publishMode: 'batch' }),
		);
		sidecar.on('POST', PUBLISH_BATCH, (call) => {
			const events = (call.body as { events: Array<{ payload: { n: number } }> }).events;
			return ok({ results: events.map((e) => published('email.received', `${e.payload.n}-0`)) });
		});
		const [out] = await node.execute.call(ctx);
		expect(sidecar.calls.map((c) => (c.body as { events: unknown[] }).events.length)).toEqual([
			1000, 1,
		]);
		expect(out).toHaveLength(1001);
		expect(out[1000]).toEqual({
			json: expect.objectContaining({ id: '1000-0' }),
			pairedItem: { item: 1000 },
		});
	});

	it('batch mode: a rejected batch fails every item with the sidecar message (continueOnFail)', async () => {
		const { ctx, sidecar } = executeHarness(
			items({ n: 0 }, { n: 1 }),
			publishParams({ publishMode: 'batch' }),
			{ continueOnFail: true },
		);
		sidecar.on(
			'POST',
			PUBLISH_BATCH,
			sidecarError(400, 'invalid_argument', 'events[1].payload: too large'),
		);
		const [out] = await node.execute.call(ctx);
		expect(out).toEqual([
			{ json: { error: 'events[1].payload: too large' }, pairedItem: { item: 0 } },
			{ json: { error: 'events[1].payload: too large' }, pairedItem: { item: 1 } },
		]);
	});

	it("fails with the sidecar's message as a NodeApiError", async () => {
		const { ctx, sidecar } = executeHarness(items({ a: 1 }), publishParams({ stream: 'nope' }));
		sidecar.on('POST', PUBLISH, sidecarError(404, 'not_found', 'unknown stream or channel "nope"'));
		const error = await node.execute.call(ctx).then(
			() => undefined,
			(e: unknown) => e,
		);
		expect(error).toBeInstanceOf(NodeApiError);
		expect((error as NodeApiError).message).toBe('unknown stream or channel "nope"');
		expect((error as NodeApiError).httpCode).toBe('404');
		expect((error as NodeApiError).description).toContain('code: not_found');
		expect((error as NodeApiError).context.itemIndex).toBe(0);
	});

	it('continueOnFail: an error item per failed input, the others succeed', async () => {
		const { ctx, sidecar } = executeHarness(items({ a: 1 }, { a: 2 }, { a: 3 }), publishParams(), {
			continueOnFail: true,
		});
		sidecar.on(
			'POST',
			PUBLISH,
			ok(published('email.received', '1-0')),
			sidecarError(429, 'backlog_full', 'stream email.received is over its backlog limit'),
			ok(published('email.received', '1-2')),
		);
		const [out] = await node.execute.call(ctx);
		expect(out).toEqual([
			{ json: expect.objectContaining({ id: '1-0' }), pairedItem: { item: 0 } },
			{
				json: { error: 'stream email.received is over its backlog limit' },
				pairedItem: { item: 1 },
			},
			{ json: expect.objectContaining({ id: '1-2' }), pairedItem: { item: 2 } },
		]);
	});

	it('says which URL could not be reached when the sidecar is down', async () => {
		const { ctx, sidecar } = executeHarness(items({ a: 1 }), publishParams());
		sidecar.on('POST', PUBLISH, () => {
			throw connectionRefused();
		});
		await expect(node.execute.call(ctx)).rejects.toThrow(
			`Cannot reach the Friday sidecar at ${BASE_URL}/api/v1/events/publish: connection refused`,
		);
	});
});

describe('Friday node: acknowledge, reject, status', () => {
	const triggerItem = {
		email_id: 'abc',
		_friday: { stream: 'email.received', group: 'email-processor', id: '1717000000000-0' },
	};
	// What n8n resolves the default expressions to for this item.
	const resolved = {
		ackStream: 'email.received',
		ackGroup: 'email-processor',
		ackId: '1717000000000-0',
	};

	it('acknowledges the delivery', async () => {
		const { ctx, sidecar } = executeHarness(items(triggerItem), {
			operation: 'acknowledge',
			...resolved,
		});
		sidecar.on('POST', /\/ack$/, ok({ acked: 1 }));
		const [[out]] = await node.execute.call(ctx);
		expect(sidecar.calls.map((c) => [c.method, c.path, c.body])).toEqual([
			[
				'POST',
				'/api/v1/streams/email.received/groups/email-processor/ack',
				{ ids: ['1717000000000-0'] },
			],
		]);
		expect(out).toEqual({
			json: { stream: 'email.received', group: 'email-processor', id: '1717000000000-0', acked: 1 },
			pairedItem: { item: 0 },
		});
	});

	it('rejects (nacks) the delivery with a reason', async () => {
		const { ctx, sidecar } = executeHarness(items(triggerItem), {
			operation: 'reject',
			...resolved,
			reason: 'customer unknown',
		});
		sidecar.on(
			'POST',
			/\/nack$/,
			ok({
				id: '1717000000000-0',
				outcome: 'dead_lettered',
				retry_at_ms: null,
				dead_letter_id: '9-0',
			}),
		);
		const [[out]] = await node.execute.call(ctx);
		expect(sidecar.calls[0].path).toBe(
			'/api/v1/streams/email.received/groups/email-processor/nack',
		);
		expect(sidecar.calls[0].body).toEqual({ id: '1717000000000-0', reason: 'customer unknown' });
		expect(out.json).toEqual({
			stream: 'email.received',
			group: 'email-processor',
			id: '1717000000000-0',
			outcome: 'dead_lettered',
			retry_at_ms: null,
			dead_letter_id: '9-0',
		});
		expect(out.pairedItem).toEqual({ item: 0 });
	});

	it.each([
		['acknowledge', /\/ack$/, { acked: 1 }],
		[
			'reject',
			/\/nack$/,
			{ id: '1717000000000-0', outcome: 'retry', retry_at_ms: 1, dead_letter_id: null },
		],
	] as const)(
		'%s goes through the shared delivery request (its timeout)',
		async (operation, path, answer) => {
			const { ctx, sidecar } = executeHarness(items(triggerItem), {
				operation,
				...resolved,
				reason: 'x',
			});
			sidecar.on('POST', path, ok(answer));
			await node.execute.call(ctx);
			expect(sidecar.calls).toHaveLength(1);
			expect(sidecar.calls[0].timeout).toBe(DELIVERY_REQUEST_TIMEOUT_MS);
		},
	);

	it('explains a missing delivery (item not from the trigger)', async () => {
		const { ctx, sidecar } = executeHarness(items({ x: 1 }), {
			operation: 'acknowledge',
			...resolved,
			ackId: '',
		});
		await expect(node.execute.call(ctx)).rejects.toThrow('Event ID is empty');
		expect(sidecar.calls).toHaveLength(0);
	});

	it('gets the stream status', async () => {
		const status = {
			name: 'email.received',
			exists: true,
			length: 3,
			groups: [{ name: 'email-processor', pending: 1, lag: 2, consumers: [] }],
			alerts: [],
		};
		const { ctx, sidecar } = executeHarness(items({}), {
			operation: 'getStreamStatus',
			statusStream: 'email.received',
		});
		sidecar.on('GET', /\/status$/, ok(status));
		const [[out]] = await node.execute.call(ctx);
		expect(sidecar.calls.map((c) => [c.method, c.path])).toEqual([
			['GET', '/api/v1/streams/email.received/status'],
		]);
		expect(out).toEqual({ json: status, pairedItem: { item: 0 } });
	});

	it.each([
		['acknowledge', /\/ack$/, { acked: 1 }],
		['reject', /\/nack$/, { id: '1717000000000-0', outcome: 'retry', retry_at_ms: 1, dead_letter_id: null }],
		['getStreamStatus', /\/status$/, { name: 'email.received' }],
	] as const)(
		'%s with continueOnFail: one item per input, in order, the failed one as an error item',
		async (operation, path, answer) => {
			const { ctx, sidecar } = executeHarness(
				items(triggerItem, triggerItem, triggerItem),
				{ operation, ...resolved, statusStream: 'email.received' },
				{ continueOnFail: true },
			);
			sidecar.on(
				operation === 'getStreamStatus' ? 'GET' : 'POST',
				path,
				ok(answer),
				sidecarError(404, 'not_found', 'entry is not pending in group email-processor'),
				ok(answer),
			);
			const [out] = await node.execute.call(ctx);
			expect(out.map((o) => o.pairedItem)).toEqual([{ item: 0 }, { item: 1 }, { item: 2 }]);
			expect(out[1].json).toEqual({ error: 'entry is not pending in group email-processor' });
			expect(out[0].json).toEqual(out[2].json);
			expect(out[0].json.error).toBeUndefined();
		},
	);

	it('without continueOnFail, the first failure stops the node at its item', async () => {
		const { ctx, sidecar } = executeHarness(items(triggerItem, triggerItem), {
			operation: 'acknowledge',
			...resolved,
		});
		sidecar.on('POST', /\/ack$/, ok({ acked: 1 }), sidecarError(404, 'not_found', 'no such group'));
		const error = await node.execute.call(ctx).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(NodeApiError);
		expect((error as NodeApiError).message).toContain('no such group');
		expect((error as NodeApiError).context.itemIndex).toBe(1);
	});

	it('encodes names in paths', async () => {
		const { ctx, sidecar } = executeHarness(items({}), {
			operation: 'getStreamStatus',
			statusStream: 'a/b',
		});
		sidecar.on('GET', /\/status$/, ok({}));
		await node.execute.call(ctx);
		expect(sidecar.calls[0].path).toBe('/api/v1/streams/a%2Fb/status');
	});
});
