import type { ITriggerResponse } from 'n8n-workflow';
import { NodeApiError, sleep } from 'n8n-workflow';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { DELIVERY_REQUEST_TIMEOUT_MS, RELEASE_REQUEST_TIMEOUT_MS } from '../nodes/shared/delivery';
import {
	FridayTrigger,
	KEEP_ALIVE_DEFAULT_S,
	defaultConsumerName,
} from '../nodes/FridayTrigger/FridayTrigger.node';
import {
	ACK,
	API_KEY,
	EXTEND,
	BASE_URL,
	NACK,
	READ,
	RELEASE,
	connectionRefused,
	delivery,
	failedRun,
	flush,
	hangUntilAborted,
	ok,
	sidecarError,
	successRun,
	triggerHarness,
} from './helpers';

const STREAM_PARAMS = {
	source: 'stream',
	stream: 'email.received',
	group: 'email-processor',
	consumer: '',
	options: {},
};

const READ_PATH = '/api/v1/streams/email.received/groups/email-processor/read';
const ACK_PATH = '/api/v1/streams/email.received/groups/email-processor/ack';
const NACK_PATH = '/api/v1/streams/email.received/groups/email-processor/nack';

const node = new FridayTrigger();
let running: ITriggerResponse | undefined;
let current: ReturnType<typeof triggerHarness> | undefined;

afterEach(async () => {
	vi.useRealTimers();
	// Finish whatever a test left running, so closing does not wait for the grace period.
	for (const emit of current?.emits ?? []) emit.done?.resolve(successRun());
	await running?.closeFunction?.();
	running = undefined;
	current = undefined;
});

async function start(h: ReturnType<typeof triggerHarness>): Promise<ITriggerResponse> {
	current = h;
	running = await node.trigger.call(h.ctx);
	return running;
}

describe('FridayTrigger description', () => {
	it('is a trigger without inputs', () => {
		expect(node.description.name).toBe('fridayTrigger');
		expect(node.description.inputs).toEqual([]);
		expect(node.description.credentials).toEqual([{ name: 'fridayApi', required: true }]);
	});

	it('defaults to acknowledging when the execution finishes successfully', () => {
		const ackMode = node.description.properties.find((p) => p.name === 'ackMode');
		expect(ackMode?.default).toBe('executionFinishesSuccessfully');
	});

	it('derives a stable, valid consumer name from the workflow id', () => {
		expect(defaultConsumerName('wf-1')).toBe('n8n-wf-1');
		expect(defaultConsumerName('a b/c')).toBe('n8n-a-b-c');
		expect(defaultConsumerName(undefined)).toBe('n8n-unsaved');
	});
});

describe('FridayTrigger consumer group: acknowledge modes', () => {
	it('long-polls the group with the default consumer name, count and block_ms', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on('POST', READ, hangUntilAborted);
		await start(h);

		await vi.waitFor(() => expect(h.sidecar.calls).toHaveLength(1));
		const [read] = h.sidecar.calls;
		expect(read.credentialType).toBe('fridayApi');
		expect(read.method).toBe('POST');
		expect(read.url).toBe(`${BASE_URL}${READ_PATH}`);
		expect(read.body).toEqual({ consumer: 'n8n-wf-1', count: 1, block_ms: 25000 });
		expect(read.timeout).toBe(35000);
		expect(read.abortSignal).toBeInstanceOf(AbortSignal);
		expect(read.options.returnFullResponse).toBe(true);
		expect(read.options.ignoreHttpStatusErrors).toBe(true);
	});

	it('keeps the delivery of a running execution in progress until it finishes', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, options: { keepAlive: 0.02 } });
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('1-0', { email_id: 'abc' })] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', EXTEND, ok({ extended: 1 }));
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		await start(h);

		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', EXTEND).length).toBeGreaterThanOrEqual(2));
		const [beat] = h.sidecar.callsTo('POST', EXTEND);
		expect(beat.path).toBe('/api/v1/streams/email.received/groups/email-processor/extend');
		expect(beat.body).toEqual({ consumer: 'n8n-wf-1', ids: ['1-0'] });
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);

		h.emits[0].done?.resolve(successRun());
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(1));
		const beats = h.sidecar.callsTo('POST', EXTEND).length;
		await sleep(80);
		expect(h.sidecar.callsTo('POST', EXTEND)).toHaveLength(beats);
	});

	// A run lasting five default keep-alive intervals (and a half), on fake timers.
	const LONG_RUN_MS = 5.5 * KEEP_ALIVE_DEFAULT_S * 1000;

	async function extendsDuringALongRun(options: Record<string, unknown>): Promise<number> {
		vi.useFakeTimers();
		const h = triggerHarness({ ...STREAM_PARAMS, options });
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('1-0', { email_id: 'abc' })] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', EXTEND, ok({ extended: 1 }));
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		await start(h);
		await vi.advanceTimersByTimeAsync(0);
		expect(h.emits).toHaveLength(1);
		await vi.advanceTimersByTimeAsync(LONG_RUN_MS);
		// The execution was still running all along: nothing acknowledged yet.
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		for (const beat of h.sidecar.callsTo('POST', EXTEND)) {
			expect(beat.body).toEqual({ consumer: 'n8n-wf-1', ids: ['1-0'] });
		}
		return h.sidecar.callsTo('POST', EXTEND).length;
	}

	it('with the default keep-alive, extends a long run every interval (control case)', async () => {
		expect(await extendsDuringALongRun({})).toBe(5);
	});

	it('sends no keep-alive when it is turned off', async () => {
		// 0 must mean off, not "use the default": the same long run makes no extend call at all.
		expect(await extendsDuringALongRun({ keepAlive: 0 })).toBe(0);
	});

	it('acknowledges, rejects and keeps alive through the one delivery request (its timeout)', async () => {
		const h = triggerHarness({
			...STREAM_PARAMS,
			options: { keepAlive: 0.02, parallelExecutions: 2 },
		});
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('1-0', {}), delivery('1-1', {})] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', EXTEND, ok({ extended: 1 }));
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		h.sidecar.on('POST', NACK, ok({ id: '1-1', outcome: 'retry' }));
		await start(h);

		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', EXTEND).length).toBeGreaterThan(0));
		h.emits[0].done!.resolve(successRun());
		h.emits[1].done!.resolve(failedRun('boom'));
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(1));
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(1));
		const settling = [EXTEND, ACK, NACK].flatMap((path) => h.sidecar.callsTo('POST', path));
		for (const call of settling) {
			expect(call.timeout).toBe(DELIVERY_REQUEST_TIMEOUT_MS);
			expect(call.abortSignal).toBeInstanceOf(AbortSignal);
			expect(call.credentialType).toBe('fridayApi');
		}
	});

	it('default mode: acknowledges after a successful execution', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('1-0', { email_id: 'abc' })] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		await start(h);

		await vi.waitFor(() => expect(h.emits).toHaveLength(1));
		const [emit] = h.emits;
		expect(emit.items).toEqual([
			[
				{
					json: {
						email_id: 'abc',
						_friday: {
							kind: 'stream',
							stream: 'email.received',
							group: 'email-processor',
							consumer: 'n8n-wf-1',
							id: '1-0',
							deliveryCount: 1,
							publishedAt: '2026-11-26T04:00:00.000Z',
							publishedAtMs: 1795492800000,
							correlationId: 'corr-1',
							eventId: null,
							source: 'gmail',
							traceparent: null,
							tracestate: null,
							ackMode: 'executionFinishesSuccessfully',
							test: false,
						},
					},
				},
			],
		]);
		expect(emit.done).toBeDefined();
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);

		emit.done!.resolve(successRun());
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(1));
		const [ack] = h.sidecar.callsTo('POST', ACK);
		expect(ack.path).toBe(ACK_PATH);
		expect(ack.body).toEqual({ ids: ['1-0'] });
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
	});

	it("default mode: rejects a failed execution with n8n's error message as the reason", async () => {
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('2-0', { email_id: 'x' })] }),
			hangUntilAborted,
		);
		h.sidecar.on(
			'POST',
			NACK,
			ok({ id: '2-0', outcome: 'retry', retry_at_ms: 1, dead_letter_id: null }),
		);
		await start(h);

		await vi.waitFor(() => expect(h.emits).toHaveLength(1));
		h.emits[0].done!.resolve(failedRun('The resource you are requesting could not be found'));

		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(1));
		const [nack] = h.sidecar.callsTo('POST', NACK);
		expect(nack.path).toBe(NACK_PATH);
		expect(nack.body).toEqual({
			id: '2-0',
			reason: 'The resource you are requesting could not be found',
		});
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
	});

	it('default mode: a rejected done promise is a failure too', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('3-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', NACK, ok({ id: '3-0', outcome: 'retry' }));
		await start(h);

		await vi.waitFor(() => expect(h.emits).toHaveLength(1));
		h.emits[0].done!.reject(new Error('Workflow could not be started'));
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(1));
		expect(h.sidecar.callsTo('POST', NACK)[0].body).toEqual({
			id: '3-0',
			reason: 'Workflow could not be started',
		});
	});

	it('"execution finishes": acknowledges failed runs as well', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, ackMode: 'executionFinishes' });
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('4-0', { n: 1 }), delivery('4-1', { n: 2 })] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		await start(h);

		await vi.waitFor(() => expect(h.emits).toHaveLength(2));
		h.emits[0].done!.resolve(failedRun('boom'));
		h.emits[1].done!.resolve(successRun());
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(2));
		expect(h.sidecar.callsTo('POST', ACK).map((c) => c.body)).toEqual([
			{ ids: ['4-0'] },
			{ ids: ['4-1'] },
		]);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
	});

	it('"immediately": acknowledges the batch before emitting, nothing after the run', async () => {
		const h = triggerHarness({
			...STREAM_PARAMS,
			ackMode: 'immediately',
			options: { parallelExecutions: 5 },
		});
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('5-0', { a: 1 }), delivery('5-1', { a: 2 })] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', ACK, ok({ acked: 2 }));
		let acksAtFirstEmit = -1;
		h.ctx.emit.mockImplementation((items, _r, done) => {
			if (acksAtFirstEmit === -1) acksAtFirstEmit = h.sidecar.callsTo('POST', ACK).length;
			h.emits.push({ items, done: done as never });
		});
		await start(h);

		await vi.waitFor(() => expect(h.emits).toHaveLength(2));
		expect(acksAtFirstEmit).toBe(1);
		expect(h.sidecar.callsTo('POST', ACK).map((c) => c.body)).toEqual([{ ids: ['5-0', '5-1'] }]);
		expect(h.sidecar.callsTo('POST', READ)[0].body).toMatchObject({ count: 5 });

		h.emits[0].done!.resolve(failedRun('ignored'));
		h.emits[1].done!.resolve(successRun());
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2));
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(1);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
	});

	it('"immediately": retries a failing acknowledgement, then does not emit the events', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, ackMode: 'immediately' });
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('6-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', ACK, sidecarError(503, 'unavailable', 'redis is down'));
		vi.useFakeTimers();
		await start(h);
		await vi.advanceTimersByTimeAsync(0);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(1);
		await vi.advanceTimersByTimeAsync(1000);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(2);
		await vi.advanceTimersByTimeAsync(2000);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(3);
		await vi.advanceTimersByTimeAsync(10000);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(3);
		expect(h.emits).toHaveLength(0);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining('redis is down; the sidecar will deliver the event again'),
		);
	});

	it('does not retry a rejection the sidecar refuses with a 4xx (event no longer pending)', async () => {
		vi.useFakeTimers();
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('6-1', {})] }), hangUntilAborted);
		h.sidecar.on(
			'POST',
			NACK,
			sidecarError(404, 'not_found', 'entry 6-1 is not pending in group email-processor'),
		);
		await start(h);
		await vi.advanceTimersByTimeAsync(0);
		expect(h.emits).toHaveLength(1);
		h.emits[0].done!.resolve(failedRun('boom'));
		await vi.advanceTimersByTimeAsync(10000);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(1);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining('could not reject 6-1 (attempt 1/3): entry 6-1 is not pending'),
		);
	});

	it('"later in the workflow": never acknowledges, keeps _friday even for payload only', async () => {
		const h = triggerHarness({
			...STREAM_PARAMS,
			ackMode: 'laterInWorkflow',
			options: { output: 'payloadOnly' },
		});
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('7-0', { k: 'v' })] }), hangUntilAborted);
		await start(h);

		await vi.waitFor(() => expect(h.emits).toHaveLength(1));
		const json = h.emits[0].items[0][0].json;
		expect(json.k).toBe('v');
		expect(json._friday).toMatchObject({
			stream: 'email.received',
			group: 'email-processor',
			id: '7-0',
			ackMode: 'laterInWorkflow',
		});
		h.emits[0].done!.resolve(successRun());
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2));
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
	});

	it('payload only: no _friday; a non-object payload goes under "payload"', async () => {
		const h = triggerHarness({
			...STREAM_PARAMS,
			options: { output: 'payloadOnly', parallelExecutions: 2 },
		});
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('8-0', { a: 1 }), delivery('8-1', [1, 2] as never)] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		await start(h);
		await vi.waitFor(() => expect(h.emits).toHaveLength(2));
		expect(h.emits[0].items[0][0].json).toEqual({ a: 1 });
		expect(h.emits[1].items[0][0].json).toEqual({ payload: [1, 2] });
	});
});

describe('FridayTrigger consumer group: flow control and shutdown', () => {
	it('never reads more events than free execution slots', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, options: { parallelExecutions: 2 } });
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('9-0', {}), delivery('9-1', {})] }),
			ok({ deliveries: [delivery('9-2', {})] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		await start(h);

		await vi.waitFor(() => expect(h.emits).toHaveLength(2));
		expect(h.sidecar.callsTo('POST', READ)[0].body).toMatchObject({ count: 2 });
		// Both slots busy: no further read.
		await flush();
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(1);

		h.emits[0].done!.resolve(successRun());
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2));
		expect(h.sidecar.callsTo('POST', READ)[1].body).toMatchObject({ count: 1 });
		await vi.waitFor(() => expect(h.emits).toHaveLength(3));
		// Still two in flight (9-1 and 9-2): the loop waits again.
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2);
	});

	it('close during a long poll aborts it and acknowledges nothing', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on('POST', READ, hangUntilAborted);
		const response = await start(h);

		await vi.waitFor(() => expect(h.sidecar.calls).toHaveLength(1));
		const signal = h.sidecar.calls[0].abortSignal!;
		expect(signal.aborted).toBe(false);

		await response.closeFunction!();
		expect(signal.aborted).toBe(true);
		expect(h.sidecar.calls).toHaveLength(1);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
		expect(h.ctx.emitError).not.toHaveBeenCalled();
	});

	it('close waits for an execution in flight and acknowledges it when it finishes in time', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('10-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		const response = await start(h);
		await vi.waitFor(() => expect(h.emits).toHaveLength(1));

		let closed = false;
		const closing = response.closeFunction!().then(() => {
			closed = true;
		});
		await vi.waitFor(() => expect(h.ctx.logger.info).toHaveBeenCalled());
		expect(closed).toBe(false);

		h.emits[0].done!.resolve(successRun());
		await closing;
		expect(h.sidecar.callsTo('POST', ACK).map((c) => c.body)).toEqual([{ ids: ['10-0'] }]);
	});

	it('close gives up after the grace period and leaves the event un-acknowledged', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, options: { closeTimeout: 0.05 } });
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('11-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		h.sidecar.on('POST', NACK, ok({ outcome: 'retry' }));
		const response = await start(h);
		await vi.waitFor(() => expect(h.emits).toHaveLength(1));

		await response.closeFunction!();
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining('1 event(s) still being processed were left un-acknowledged'),
		);
		// The execution ends after shutdown: still nothing is acknowledged on its behalf.
		h.emits[0].done!.resolve(successRun());
		await vi.waitFor(() =>
			expect(h.ctx.logger.info).toHaveBeenCalledWith(
				expect.stringContaining('finished after shutdown'),
			),
		);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
	});

	it('deliveries that arrive while closing are neither emitted nor acknowledged', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		let answer: ((value: unknown) => void) | undefined;
		h.sidecar.on('POST', READ, async () => {
			await new Promise((resolve) => {
				answer = resolve;
			});
			return ok({ deliveries: [delivery('12-0', {})] });
		});
		const response = await start(h);
		await vi.waitFor(() => expect(answer).toBeDefined());
		const closing = response.closeFunction!();
		answer!(undefined);
		await closing;
		expect(h.emits).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
	});

	it('close gives back what it read and never emitted, through the release route', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, options: { parallelExecutions: 3 } });
		let answer: (() => void) | undefined;
		h.sidecar.on('POST', READ, async () => {
			// The answer arrives although close() already aborted the long poll.
			await new Promise<void>((resolve) => {
				answer = resolve;
			});
			return ok({
				deliveries: [delivery('14-0', {}), delivery('14-1', {}, { delivery_count: 2 })],
			});
		});
		h.sidecar.on('POST', RELEASE, ok({ released: 2 }));
		const response = await start(h);
		await vi.waitFor(() => expect(answer).toBeDefined());
		const closing = response.closeFunction!();
		answer!();
		await closing;

		expect(h.emits).toHaveLength(0);
		const releases = h.sidecar.callsTo('POST', RELEASE);
		expect(releases).toHaveLength(1);
		expect(releases[0].path).toBe('/api/v1/streams/email.received/groups/email-processor/release');
		expect(releases[0].body).toEqual({
			consumer: 'n8n-wf-1',
			deliveries: [
				{ id: '14-0', delivery_count: 1 },
				{ id: '14-1', delivery_count: 2 },
			],
		});
		expect(releases[0].timeout).toBe(RELEASE_REQUEST_TIMEOUT_MS);
		expect(releases[0].credentialType).toBe('fridayApi');
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
	});

	it('"immediately": close while acknowledging gives the read back instead of emitting it', async () => {
		const h = triggerHarness({
			...STREAM_PARAMS,
			ackMode: 'immediately',
			options: { parallelExecutions: 2 },
		});
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('15-0', {}), delivery('15-1', {})] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', ACK, hangUntilAborted);
		h.sidecar.on('POST', RELEASE, ok({ released: 2 }));
		const response = await start(h);
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(1));

		await response.closeFunction!();
		expect(h.emits).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', RELEASE).map((c) => c.body)).toEqual([
			{
				consumer: 'n8n-wf-1',
				deliveries: [
					{ id: '15-0', delivery_count: 1 },
					{ id: '15-1', delivery_count: 1 },
				],
			},
		]);
	});

	it('"immediately": an acknowledgement refused gives the events back at once, and reading goes on', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, ackMode: 'immediately' });
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('16-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', ACK, sidecarError(404, 'not_found', 'group email-processor does not exist'));
		h.sidecar.on('POST', RELEASE, ok({ released: 1 }));
		await start(h);

		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', RELEASE)).toHaveLength(1));
		expect(h.sidecar.callsTo('POST', RELEASE)[0].body).toEqual({
			consumer: 'n8n-wf-1',
			deliveries: [{ id: '16-0', delivery_count: 1 }],
		});
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2));
		expect(h.emits).toHaveLength(0);
	});

	it('close leaves the events of running executions pending: nothing released, keep-alive stops', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, options: { keepAlive: 0.02, closeTimeout: 0 } });
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('17-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', EXTEND, ok({ extended: 1 }));
		h.sidecar.on('POST', RELEASE, ok({ released: 1 }));
		const response = await start(h);
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', EXTEND).length).toBeGreaterThan(0));

		await response.closeFunction!();
		const beats = h.sidecar.callsTo('POST', EXTEND).length;
		await sleep(80);
		expect(h.sidecar.callsTo('POST', EXTEND)).toHaveLength(beats);
		expect(h.sidecar.callsTo('POST', RELEASE)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
	});

	it('a release the sidecar cannot take is logged; the events come back after the claim idle time', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		let answer: (() => void) | undefined;
		h.sidecar.on('POST', READ, async () => {
			await new Promise<void>((resolve) => {
				answer = resolve;
			});
			return ok({ deliveries: [delivery('18-0', {})] });
		});
		h.sidecar.on('POST', RELEASE, sidecarError(503, 'unavailable', 'redis is down'));
		const response = await start(h);
		await vi.waitFor(() => expect(answer).toBeDefined());
		const closing = response.closeFunction!();
		answer!();
		await closing;
		expect(h.sidecar.callsTo('POST', RELEASE)).toHaveLength(1);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining('could not give back 1 event(s) never started (18-0): redis is down'),
		);
	});

	it('reads every parameter before the loop starts', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('13-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		const response = await start(h);
		const readsAtStart = h.parameterReads();
		const credentialReadsAtStart = h.ctx.getCredentials.mock.calls.length;
		await vi.waitFor(() => expect(h.emits).toHaveLength(1));
		h.emits[0].done!.resolve(successRun());
		await vi.waitFor(() => expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(1));
		await response.closeFunction!();
		expect(h.parameterReads()).toBe(readsAtStart);
		expect(h.ctx.getCredentials.mock.calls.length).toBe(credentialReadsAtStart);
	});

	it('rejects invalid options at activation', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, options: { parallelExecutions: 0 } });
		await expect(node.trigger.call(h.ctx)).rejects.toThrow('Parallel Executions must be 1 or more');
		const h2 = triggerHarness({ ...STREAM_PARAMS, group: '' });
		await expect(node.trigger.call(h2.ctx)).rejects.toThrow('Consumer Group is required');
	});
});

describe('FridayTrigger consumer group: outcome timeout', () => {
	it('is an option of the consumer group, off (0) by default', () => {
		const options = node.description.properties.find((p) => p.name === 'options');
		const option = (options?.options as Array<{ name: string; default?: unknown }>).find(
			(o) => o.name === 'outcomeTimeout',
		);
		expect(option?.default).toBe(0);
	});

	it('at the timeout: frees the slot, stops the keep-alive, sends no ack or nack; a late outcome is ignored and the redelivery is acknowledged', async () => {
		vi.useFakeTimers();
		const h = triggerHarness({
			...STREAM_PARAMS,
			options: { outcomeTimeout: 30, keepAlive: 7 },
		});
		let redeliver: (() => void) | undefined;
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('20-0', { n: 1 })] }),
			// The sidecar's redelivery of the same entry (claim idle time passed), counted.
			async () => {
				await new Promise<void>((resolve) => {
					redeliver = resolve;
				});
				return ok({ deliveries: [delivery('20-0', { n: 1 }, { delivery_count: 2 })] });
			},
			hangUntilAborted,
		);
		h.sidecar.on('POST', EXTEND, ok({ extended: 1 }));
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		h.sidecar.on('POST', NACK, ok({ outcome: 'retry' }));
		h.sidecar.on('POST', RELEASE, ok({ released: 1 }));
		await start(h);
		await vi.advanceTimersByTimeAsync(0);
		expect(h.emits).toHaveLength(1);

		// Just before the timeout: the one slot is busy, the event kept alive (7, 14, 21, 28 s).
		await vi.advanceTimersByTimeAsync(29_999);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(1);
		expect(h.sidecar.callsTo('POST', EXTEND)).toHaveLength(4);
		expect(h.ctx.logger.warn).not.toHaveBeenCalled();

		// The timeout: the slot is freed (the loop reads again), a warning names the event.
		await vi.advanceTimersByTimeAsync(1);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2);
		expect(h.sidecar.callsTo('POST', READ)[1].body).toMatchObject({ count: 1 });
		expect(h.ctx.logger.warn).toHaveBeenCalledTimes(1);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringMatching(
				/no outcome for the execution of event 20-0 \(delivery 1\) within the outcome timeout of 30 s; its slot is freed, left unacknowledged/,
			),
		);

		// Keep-alive stopped: a minute later, still the same 4 beats. Nothing acked, rejected or released.
		await vi.advanceTimersByTimeAsync(60_000);
		expect(h.sidecar.callsTo('POST', EXTEND)).toHaveLength(4);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', RELEASE)).toHaveLength(0);

		// The sidecar redelivers the same entry id: a new delivery, a new execution.
		redeliver!();
		await vi.advanceTimersByTimeAsync(0);
		expect(h.emits).toHaveLength(2);
		expect(h.emits[1].items[0][0].json._friday).toMatchObject({ id: '20-0', deliveryCount: 2 });

		// The first execution's outcome arrives late, while the redelivery runs: ignored,
		// neither a nack for it nor anything taken from the redelivery.
		h.emits[0].done!.resolve(failedRun('late failure'));
		await vi.advanceTimersByTimeAsync(0);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		expect(h.ctx.logger.info).toHaveBeenCalledWith(
			expect.stringContaining('event 20-0 (delivery 1) ended after its outcome timeout; ignored'),
		);

		// The redelivery's own outcome is acknowledged normally.
		h.emits[1].done!.resolve(successRun());
		await vi.advanceTimersByTimeAsync(0);
		expect(h.sidecar.callsTo('POST', ACK).map((c) => c.body)).toEqual([{ ids: ['20-0'] }]);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
		expect(h.ctx.logger.warn).toHaveBeenCalledTimes(1);
	});

	it('a late success is ignored too: no acknowledgement after the timeout', async () => {
		vi.useFakeTimers();
		const h = triggerHarness({ ...STREAM_PARAMS, options: { outcomeTimeout: 5, keepAlive: 0 } });
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('21-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		h.sidecar.on('POST', NACK, ok({ outcome: 'retry' }));
		await start(h);
		await vi.advanceTimersByTimeAsync(5_000);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2);

		h.emits[0].done!.resolve(successRun());
		await vi.advanceTimersByTimeAsync(10_000);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
	});

	it('an outcome before the timeout settles as usual, and nothing expires afterwards', async () => {
		vi.useFakeTimers();
		const h = triggerHarness({
			...STREAM_PARAMS,
			options: { outcomeTimeout: 30, parallelExecutions: 2, keepAlive: 0 },
		});
		h.sidecar.on(
			'POST',
			READ,
			ok({ deliveries: [delivery('22-0', {}), delivery('22-1', {})] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		h.sidecar.on('POST', NACK, ok({ outcome: 'retry' }));
		await start(h);
		await vi.advanceTimersByTimeAsync(0);
		expect(h.emits).toHaveLength(2);

		await vi.advanceTimersByTimeAsync(29_000);
		h.emits[0].done!.resolve(successRun());
		h.emits[1].done!.resolve(failedRun('boom'));
		await vi.advanceTimersByTimeAsync(0);
		expect(h.sidecar.callsTo('POST', ACK).map((c) => c.body)).toEqual([{ ids: ['22-0'] }]);
		expect(h.sidecar.callsTo('POST', NACK).map((c) => c.body)).toEqual([
			{ id: '22-1', reason: 'boom' },
		]);

		await vi.advanceTimersByTimeAsync(120_000);
		expect(h.ctx.logger.warn).not.toHaveBeenCalled();
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(1);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(1);
	});

	it('"immediately": the timeout only frees the slot (the event was acknowledged before the run)', async () => {
		vi.useFakeTimers();
		const h = triggerHarness({
			...STREAM_PARAMS,
			ackMode: 'immediately',
			options: { outcomeTimeout: 10 },
		});
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('24-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		await start(h);
		await vi.advanceTimersByTimeAsync(9_999);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(1);
		await vi.advanceTimersByTimeAsync(1);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining(
				'event 24-0 (delivery 1) within the outcome timeout of 10 s; its slot is freed, it was acknowledged before the execution',
			),
		);
		expect(h.sidecar.callsTo('POST', ACK).map((c) => c.body)).toEqual([{ ids: ['24-0'] }]);
	});

	// A whole day without an outcome, on fake timers: does the slot come free?
	async function slotFreedWithinADay(options: Record<string, unknown>): Promise<boolean> {
		vi.useFakeTimers();
		const h = triggerHarness({ ...STREAM_PARAMS, options: { keepAlive: 0, ...options } });
		h.sidecar.on('POST', READ, ok({ deliveries: [delivery('23-0', {})] }), hangUntilAborted);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		h.sidecar.on('POST', NACK, ok({ outcome: 'retry' }));
		await start(h);
		await vi.advanceTimersByTimeAsync(24 * 3600 * 1000);
		expect(h.emits).toHaveLength(1);
		expect(h.sidecar.callsTo('POST', ACK)).toHaveLength(0);
		expect(h.sidecar.callsTo('POST', NACK)).toHaveLength(0);
		return h.sidecar.callsTo('POST', READ).length > 1;
	}

	it('with 0 (and by default) nothing times out: the slot stays held until the outcome', async () => {
		expect(await slotFreedWithinADay({ outcomeTimeout: 0 })).toBe(false);
		expect(current!.ctx.logger.warn).not.toHaveBeenCalled();
		current!.emits[0].done!.resolve(successRun());
		await vi.advanceTimersByTimeAsync(0);
		expect(current!.sidecar.callsTo('POST', ACK).map((c) => c.body)).toEqual([{ ids: ['23-0'] }]);
	});

	it('without the option nothing times out either', async () => {
		expect(await slotFreedWithinADay({})).toBe(false);
	});

	it('the same day with a one-hour timeout does free the slot (control case)', async () => {
		expect(await slotFreedWithinADay({ outcomeTimeout: 3600 })).toBe(true);
	});

	it('rejects a negative outcome timeout at activation', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, options: { outcomeTimeout: -1 } });
		await expect(node.trigger.call(h.ctx)).rejects.toThrow(
			'Outcome Timeout must be 0 or more seconds',
		);
	});
});

describe('FridayTrigger: sidecar unreachable', () => {
	it('retries with exponential backoff, reports the outage without deactivating, and resumes', async () => {
		vi.useFakeTimers();
		const h = triggerHarness(STREAM_PARAMS);
		const refuse = () => {
			throw connectionRefused();
		};
		h.sidecar.on(
			'POST',
			READ,
			refuse,
			refuse,
			refuse,
			ok({ deliveries: [delivery('14-0', { back: true })] }),
			hangUntilAborted,
		);
		h.sidecar.on('POST', ACK, ok({ acked: 1 }));
		await start(h);

		await vi.advanceTimersByTimeAsync(0);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(1);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining(
				`Cannot reach the Friday sidecar at ${BASE_URL}${READ_PATH}: connection refused`,
			),
		);
		await vi.advanceTimersByTimeAsync(999);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(1);
		await vi.advanceTimersByTimeAsync(1);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2); // after 1 s
		await vi.advanceTimersByTimeAsync(1999);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2);
		await vi.advanceTimersByTimeAsync(1);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(3); // after 2 s more
		expect(h.ctx.saveFailedExecution).toHaveBeenCalledTimes(1);
		const reported = h.ctx.saveFailedExecution.mock.calls[0][0];
		expect(reported).toBeInstanceOf(NodeApiError);
		expect(reported.message).toContain('Cannot reach the Friday sidecar');

		await vi.advanceTimersByTimeAsync(4000);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(4); // after 4 s more: back
		expect(h.emits).toHaveLength(1);
		expect(h.emits[0].items[0][0].json.back).toBe(true);
		expect(h.ctx.logger.info).toHaveBeenCalledWith(
			expect.stringContaining('sidecar reachable again'),
		);
		expect(h.ctx.emitError).not.toHaveBeenCalled();
	});

	it('caps the backoff at 30 s', async () => {
		const { nextBackoff } = await import('../nodes/FridayTrigger/consumer');
		const delays: number[] = [];
		let delay = 0;
		for (let i = 0; i < 8; i++) {
			delay = nextBackoff(delay);
			delays.push(delay);
		}
		expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
	});

	it('keeps retrying on a sidecar error answer and logs the sidecar message', async () => {
		vi.useFakeTimers();
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on(
			'POST',
			READ,
			sidecarError(404, 'not_found', 'consumer group email-processor does not exist'),
			hangUntilAborted,
		);
		await start(h);
		await vi.advanceTimersByTimeAsync(0);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining('consumer group email-processor does not exist'),
		);
		await vi.advanceTimersByTimeAsync(1000);
		expect(h.sidecar.callsTo('POST', READ)).toHaveLength(2);
		expect(h.ctx.emitError).not.toHaveBeenCalled();
	});
});

describe('FridayTrigger manual mode (listen for test event)', () => {
	it('shows the next event without touching the consumer group, and emits once', async () => {
		const h = triggerHarness(STREAM_PARAMS, 'manual');
		h.sidecar.on(
			'GET',
			/\/next$/,
			ok({ event: null }),
			ok({
				event: {
					stream: 'email.received',
					id: '15-0',
					delivery_count: 0,
					payload: { email_id: 'test' },
					metadata: { source: 'gmail' },
				},
			}),
		);
		const response = await start(h);
		expect(h.sidecar.calls).toHaveLength(0);
		expect(response.manualTriggerFunction).toBeDefined();

		await response.manualTriggerFunction!();
		await vi.waitFor(() => expect(h.emits).toHaveLength(1));
		const nextCalls = h.sidecar.callsTo('GET', /\/next$/);
		expect(nextCalls).toHaveLength(2);
		expect(nextCalls[0].path).toBe('/api/v1/streams/email.received/next');
		expect(nextCalls[0].qs).toEqual({ block_ms: 25000 });
		expect(nextCalls[0].timeout).toBe(35000);
		expect(h.emits[0].done).toBeUndefined();
		expect(h.emits[0].items[0][0].json).toMatchObject({
			email_id: 'test',
			_friday: { id: '15-0', deliveryCount: 0, group: 'email-processor', test: true },
		});
		await response.closeFunction!();
		expect(
			h.sidecar.calls.every((c) => !READ.test(c.path) && !ACK.test(c.path) && !NACK.test(c.path)),
		).toBe(true);
		expect(h.sidecar.calls).toHaveLength(2);
	});

	it('surfaces a sidecar error to the editor with the sidecar message', async () => {
		const h = triggerHarness({ ...STREAM_PARAMS, stream: 'nope' }, 'manual');
		h.sidecar.on('GET', /\/next$/, sidecarError(404, 'not_found', 'unknown stream "nope"'));
		const response = await start(h);
		await response.manualTriggerFunction!();
		await vi.waitFor(() => expect(h.ctx.emitError).toHaveBeenCalledTimes(1));
		const error = h.ctx.emitError.mock.calls[0][0] as NodeApiError;
		expect(error).toBeInstanceOf(NodeApiError);
		expect(error.message).toBe('unknown stream "nope"');
		expect(error.httpCode).toBe('404');
		expect(h.emits).toHaveLength(0);
	});

	it('close while waiting for a test event aborts the call', async () => {
		const h = triggerHarness(STREAM_PARAMS, 'manual');
		h.sidecar.on('GET', /\/next$/, hangUntilAborted);
		const response = await start(h);
		await response.manualTriggerFunction!();
		await vi.waitFor(() => expect(h.sidecar.calls).toHaveLength(1));
		await response.closeFunction!();
		expect(h.sidecar.calls[0].abortSignal!.aborted).toBe(true);
		expect(h.emits).toHaveLength(0);
		expect(h.ctx.emitError).not.toHaveBeenCalled();
	});
});

describe('FridayTrigger informational channel (SSE)', () => {
	const CHANNEL_PARAMS = { source: 'channel', channel: 'file.uploaded', options: {} };

	/** A streamed body like the one n8n returns for encoding: 'stream'. */
	async function* body(...chunks: string[]) {
		for (const chunk of chunks) yield new TextEncoder().encode(chunk);
	}

	function sse(...chunks: string[]) {
		return async () => ok(body(...chunks));
	}

	it('subscribes with encoding "stream" and emits each message', async () => {
		const h = triggerHarness(CHANNEL_PARAMS);
		h.sidecar.on(
			'GET',
			/\/subscribe$/,
			sse(
				': keepalive\n\n',
				'event: message\ndata: {"channel": "file.uploaded", "payload": {"file": "a.pdf"}, ',
				'"metadata": {"source": "nas", "published_at_ms": 5}}\n\n',
				'event: message\r\ndata: {"channel": "file.uploaded", "payload": {"file": "b.pdf"}, "metadata": {}}\r\n\r\n',
			),
			hangUntilAborted,
		);
		const response = await start(h);
		await vi.waitFor(() => expect(h.emits).toHaveLength(2));
		const [first] = h.sidecar.calls;
		expect(first.path).toBe('/api/v1/channels/file.uploaded/subscribe');
		expect(first.encoding).toBe('stream');
		expect(first.options.headers).toMatchObject({ Accept: 'text/event-stream' });
		expect(h.emits[0].items[0][0].json).toEqual({
			file: 'a.pdf',
			_friday: expect.objectContaining({
				kind: 'channel',
				stream: 'file.uploaded',
				group: null,
				id: null,
				source: 'nas',
				publishedAtMs: 5,
			}),
		});
		expect(h.emits[1].items[0][0].json.file).toBe('b.pdf');
		expect(h.emits[0].done).toBeUndefined();

		// The first stream ended: the trigger reconnects by itself.
		await vi.waitFor(() => expect(h.sidecar.calls).toHaveLength(2), { timeout: 3000 });
		await response.closeFunction!();
		expect(h.sidecar.calls[1].abortSignal!.aborted).toBe(true);
	});

	it('manual mode emits the first channel message only', async () => {
		const h = triggerHarness(CHANNEL_PARAMS, 'manual');
		h.sidecar.on(
			'GET',
			/\/subscribe$/,
			sse(
				'data: {"channel": "file.uploaded", "payload": {"n": 1}}\n\n',
				'data: {"channel": "file.uploaded", "payload": {"n": 2}}\n\n',
			),
		);
		const response = await start(h);
		await response.manualTriggerFunction!();
		await vi.waitFor(() => expect(h.emits).toHaveLength(1));
		await response.closeFunction!();
		expect(h.emits).toHaveLength(1);
		expect(h.emits[0].items[0][0].json).toMatchObject({ n: 1, _friday: { test: true } });
	});

	it('reopens a subscription the sidecar ends with "event: error"', async () => {
		vi.useFakeTimers();
		const h = triggerHarness(CHANNEL_PARAMS);
		h.sidecar.on(
			'GET',
			/\/subscribe$/,
			sse(
				'event: error\ndata: {"error": {"code": "unavailable", "message": "redis subscription lost"}}\n\n',
			),
			hangUntilAborted,
		);
		await start(h);
		await vi.advanceTimersByTimeAsync(0);
		expect(h.emits).toHaveLength(0);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining(
				'cannot read channel file.uploaded: redis subscription lost. Retrying in 1 s.',
			),
		);
		await vi.advanceTimersByTimeAsync(1000);
		expect(h.sidecar.calls).toHaveLength(2);
	});

	it('reports a subscription error body with the sidecar message', async () => {
		vi.useFakeTimers();
		const h = triggerHarness(CHANNEL_PARAMS);
		h.sidecar.on(
			'GET',
			/\/subscribe$/,
			async () => ({
				statusCode: 403,
				body: body(
					'{"error": {"code": "permission_denied", "message": "key lacks the consume role"}}',
				),
			}),
			hangUntilAborted,
		);
		await start(h);
		await vi.advanceTimersByTimeAsync(0);
		expect(h.ctx.logger.warn).toHaveBeenCalledWith(
			expect.stringContaining('key lacks the consume role'),
		);
		await vi.advanceTimersByTimeAsync(1000);
		expect(h.sidecar.calls).toHaveLength(2);
	});
});

describe('FridayTrigger authentication', () => {
	it('sends every request through httpRequestWithAuthentication with the Friday credential', async () => {
		const h = triggerHarness(STREAM_PARAMS);
		h.sidecar.on('POST', READ, hangUntilAborted);
		await start(h);
		await vi.waitFor(() => expect(h.sidecar.calls).toHaveLength(1));
		expect(h.ctx.helpers.httpRequestWithAuthentication).toHaveBeenCalledWith(
			'fridayApi',
			expect.objectContaining({ url: `${BASE_URL}${READ_PATH}` }),
		);
		expect(h.ctx.helpers.httpRequest).not.toHaveBeenCalled();
		expect(API_KEY).toBe('test-key');
	});
});
