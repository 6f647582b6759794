import type { IDataObject, IRun, ITriggerFunctions } from 'n8n-workflow';
import { NodeOperationError, sleep } from 'n8n-workflow';

import type {
	AckMode,
	DeliveryAction,
	OutputShape,
	SidecarChannelMessage,
	SidecarDelivery,
} from '../shared/delivery';
import {
	buildEventItem,
	deliveryRequest,
	metaFromChannelMessage,
	metaFromDelivery,
} from '../shared/delivery';
import { errorMessage, toNodeError } from '../shared/errors';
import { SseParser } from '../shared/sse';
import { fridayApiRequest, seg, sidecarApiError } from '../shared/transport';

/** Everything the trigger needs, read once inside trigger() before any loop starts. */
export interface TriggerSettings {
	source: 'stream' | 'channel';
	stream: string;
	group: string;
	channel: string;
	consumer: string;
	ackMode: AckMode;
	/** Max executions in flight at once; a read never asks for more events than free slots. */
	parallel: number;
	output: OutputShape;
	/** Long-poll wait sent to the sidecar as block_ms. */
	blockMs: number;
	/** How long closeFunction waits for in-flight executions to finish and be acknowledged. */
	closeTimeoutMs: number;
	/** While an execution runs, extend its delivery this often (0: never), so it is not reclaimed. */
	keepAliveMs: number;
	/**
	 * Stop waiting for an execution's outcome after this long (0: never). Then the delivery's
	 * keep-alive stops, its slot is freed and it is left unacknowledged (redelivered).
	 */
	outcomeTimeoutMs: number;
	baseUrl: string;
	workflowId: string;
	nodeName: string;
}

/** Extra HTTP time above block_ms before a long poll counts as hung. */
export const POLL_TIMEOUT_MARGIN_MS = 10_000;
/** Idle time after which a channel subscription counts as dead (keepalives come every 15 s). */
export const SSE_IDLE_TIMEOUT_MS = 45_000;
export const BACKOFF_INITIAL_MS = 1_000;
export const BACKOFF_MAX_MS = 30_000;
/** An empty read answered faster than this (block_ms > 0) is treated as a misbehaving server. */
const FAST_EMPTY_READ_MS = 50;
/** Failures in a row before an outage is also reported as a failed execution. */
export const OUTAGE_REPORT_AFTER = 3;
/** Attempts to acknowledge / reject one delivery after its execution finished. */
export const SETTLE_ATTEMPTS = 3;
/**
 * Upper bound of the trigger's read count, whatever the parallel limit. Lower than the
 * sidecar's own limit (MAX_READ_COUNT, 1000 per read), and so also below the 1000 ids one
 * acknowledgement may name (MAX_ACK_IDS): "Immediately" acknowledges a whole read at once.
 */
const READ_COUNT_CAP = 100;
/**
 * A nack reason longer than this is cut (with "…") before it is sent. The sidecar would keep
 * up to 4096 characters (its MAX_REASON_LENGTH); n8n error messages rarely need that much.
 */
const NACK_REASON_CAP = 2000;

/** Sidecar answers worth retrying: no answer at all, 408, 429 and 5xx. */
export function isRetriable(error: unknown): boolean {
	const httpCode = Number((error as { httpCode?: unknown } | null)?.httpCode);
	if (!Number.isFinite(httpCode) || httpCode === 0) return true;
	return httpCode === 408 || httpCode === 429 || httpCode >= 500;
}

export function nextBackoff(previous: number): number {
	return previous <= 0 ? BACKOFF_INITIAL_MS : Math.min(previous * 2, BACKOFF_MAX_MS);
}

/** True when an n8n run ended in error (or was cancelled / crashed). */
export function runFailed(run: IRun | undefined): boolean {
	if (!run) return true;
	if (run.data?.resultData?.error) return true;
	return run.status === 'error' || run.status === 'crashed' || run.status === 'canceled';
}

/** The reason sent with a nack: n8n's own error message for the failed run. */
export function failureReason(run: IRun | undefined, failure?: unknown): string {
	let reason: string;
	if (failure !== undefined) {
		reason = errorMessage(failure);
	} else if (!run) {
		reason = 'n8n reported no result for the execution';
	} else if (run.data?.resultData?.error?.message) {
		reason = run.data.resultData.error.message;
	} else {
		reason = `n8n execution ended with status "${run.status}"`;
	}
	return reason.length > NACK_REASON_CAP ? `${reason.slice(0, NACK_REASON_CAP - 1)}…` : reason;
}

/** Counts executions in flight and wakes waiters when one ends. */
class InFlight {
	count = 0;

	private waiters: Array<() => void> = [];

	acquire(): void {
		this.count++;
	}

	release(): void {
		this.count--;
		const waiters = this.waiters;
		this.waiters = [];
		waiters.forEach((wake) => wake());
	}

	/** Resolves on the next release, or when the signal aborts. */
	async changed(signal: AbortSignal): Promise<void> {
		if (signal.aborted) return;
		await new Promise<void>((resolve) => {
			const onAbort = () => resolve();
			this.waiters.push(() => {
				signal.removeEventListener('abort', onAbort);
				resolve();
			});
			signal.addEventListener('abort', onAbort, { once: true });
		});
	}
}

/** Sleeps unless aborted first; never throws. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
	if (signal.aborted) return;
	try {
		await sleep(ms, signal);
	} catch {
		// Aborted: the caller checks its own state.
	}
}

/**
 * The Friday Trigger's engine: the consumer-group read loop, the channel subscription,
 * the manual "listen for test event" call, acknowledgement and shutdown.
 */
export class FridayConsumer {
	private readonly inFlight = new InFlight();

	/** Aborts the current long poll / subscription and every wait of the loop. */
	private readonly pollAbort = new AbortController();

	/** Aborts ack/nack retries once the shutdown grace period is over. */
	private readonly settleAbort = new AbortController();

	private stopped = false;

	/** Set when the grace period ended: late finishers are left un-acked. */
	private abandoned = false;

	private loop: Promise<void> | undefined;

	private failures = 0;

	private backoff = 0;

	constructor(
		private readonly ctx: ITriggerFunctions,
		private readonly settings: TriggerSettings,
	) {}

	/** Starts the production loop in the background. */
	start(): void {
		this.loop = this.settings.source === 'channel' ? this.subscribeLoop(false) : this.readLoop();
	}

	/** "Listen for test event": emits exactly one event, never touching the consumer group. */
	startManual(): void {
		this.loop =
			this.settings.source === 'channel' ? this.subscribeLoop(true) : this.nextEventLoop();
	}

	/**
	 * Deactivation: stop reading, give back (release) what was read and never emitted, give
	 * executions in flight a bounded time to finish and be acknowledged, and leave those still
	 * running pending in the sidecar (redelivered after its claim idle time, counted as a
	 * delivery: an execution had them).
	 */
	async close(): Promise<void> {
		if (this.stopped) return;
		this.stopped = true;
		this.pollAbort.abort();
		if (this.loop) await this.loop;

		const waitsForExecutions =
			this.settings.source === 'stream' && this.settings.ackMode !== 'immediately';
		if (waitsForExecutions && this.inFlight.count > 0) {
			this.ctx.logger.info(
				`Friday Trigger "${this.settings.nodeName}": waiting up to ${Math.round(this.settings.closeTimeoutMs / 1000)} s for ${this.inFlight.count} execution(s) to finish`,
			);
			await this.waitIdle(this.settings.closeTimeoutMs);
		}
		const left = this.inFlight.count;
		this.abandoned = true;
		this.settleAbort.abort();
		if (waitsForExecutions && left > 0) {
			this.ctx.logger.warn(
				`Friday Trigger "${this.settings.nodeName}": ${left} event(s) still being processed were left un-acknowledged; the sidecar will deliver them again`,
			);
		}
	}

	private async waitIdle(timeoutMs: number): Promise<void> {
		const timer = new AbortController();
		const idle = (async () => {
			while (this.inFlight.count > 0 && !timer.signal.aborted) {
				await this.inFlight.changed(timer.signal);
			}
		})();
		await Promise.race([idle, pause(timeoutMs, timer.signal)]);
		timer.abort();
		await idle;
	}

	// ------------------------------------------------------------------
	// consumer group
	// ------------------------------------------------------------------

	private get readPath(): string {
		const { stream, group } = this.settings;
		return `/api/v1/streams/${seg(stream)}/groups/${seg(group)}/read`;
	}

	private async readLoop(): Promise<void> {
		const signal = this.pollAbort.signal;
		while (!this.stopped) {
			while (!this.stopped && this.inFlight.count >= this.settings.parallel) {
				await this.inFlight.changed(signal);
			}
			if (this.stopped) break;

			const free = this.settings.parallel - this.inFlight.count;
			const count = Math.max(1, Math.min(free, READ_COUNT_CAP));
			const startedAt = Date.now();
			let deliveries: SidecarDelivery[];
			try {
				const response = (await fridayApiRequest.call(
					this.ctx,
					'POST',
					this.readPath,
					{
						consumer: this.settings.consumer,
						count,
						block_ms: this.settings.blockMs,
					},
					undefined,
					{
						baseUrl: this.settings.baseUrl,
						timeout: this.settings.blockMs + POLL_TIMEOUT_MARGIN_MS,
						abortSignal: signal,
					},
				)) as { deliveries?: SidecarDelivery[] };
				deliveries = Array.isArray(response?.deliveries) ? response.deliveries : [];
			} catch (error) {
				if (this.stopped) break;
				await this.onFailure(error);
				continue;
			}
			this.onSuccess();
			// Read while closing: never emitted, so given back (redelivered at once, uncounted).
			if (this.stopped) {
				await this.release(deliveries);
				break;
			}

			if (deliveries.length === 0) {
				if (this.settings.blockMs > 0 && Date.now() - startedAt < FAST_EMPTY_READ_MS) {
					await pause(BACKOFF_INITIAL_MS, signal);
				}
				continue;
			}
			await this.dispatch(deliveries);
		}
	}

	private async dispatch(deliveries: SidecarDelivery[]): Promise<void> {
		const { ackMode } = this.settings;
		if (ackMode === 'immediately') {
			const acked = await this.ack(
				deliveries.map((delivery) => delivery.id),
				this.pollAbort.signal,
			);
			if (!acked) {
				// Not acknowledged: not emitted either; given back, so they come again at once.
				await this.release(deliveries);
				return;
			}
		}
		for (const delivery of deliveries) {
			this.emitDelivery(delivery);
		}
	}

	private emitDelivery(delivery: SidecarDelivery): void {
		const { ackMode, group, output } = this.settings;
		const meta = metaFromDelivery(delivery, { group, ackMode, test: false });
		const item = buildEventItem(delivery.payload, meta, output);
		const done = this.ctx.helpers.createDeferredPromise<IRun>();
		this.inFlight.acquire();
		// n8n 2.x: `promise` is a Promise; n8n 1.x had a function returning it.
		const finished: Promise<IRun> =
			typeof (done.promise as unknown) === 'function'
				? (done.promise as unknown as () => Promise<IRun>)()
				: done.promise;
		const keepAlive = this.keepAlive(delivery.id);
		void finished.then(
			() => keepAlive.abort(),
			() => keepAlive.abort(),
		);
		// This delivery only: a redelivery of the same entry id is another delivery, its own token.
		const token = { expired: false };
		const outcome = finished.then(
			async (run) =>
				token.expired ? this.lateOutcome(delivery) : await this.settle(delivery, run),
			async (error) =>
				token.expired ? this.lateOutcome(delivery) : await this.settle(delivery, undefined, error),
		);
		const settled = this.outcomeOrTimeout(delivery, finished, outcome, () => {
			token.expired = true;
			keepAlive.abort();
		});
		void settled
			.catch((error) => {
				this.ctx.logger.error(
					`Friday Trigger "${this.settings.nodeName}": could not settle event ${delivery.id}: ${errorMessage(error)}`,
				);
			})
			.finally(() => this.inFlight.release());
		try {
			this.ctx.emit([[item]], undefined, done);
		} catch (error) {
			done.reject(error instanceof Error ? error : new Error(errorMessage(error)));
		}
	}

	/**
	 * Resolves once the execution's outcome is settled, or when n8n reported none within
	 * outcomeTimeoutMs (then expire() runs: the keep-alive stops and the late outcome will be
	 * ignored; resolving frees the parallel slot). The event is left unacknowledged, so the
	 * sidecar delivers it again after its claim idle time, counted, as after a crash. A safety
	 * net for n8n queue mode, where the main can miss a fast job's end when Bull deletes
	 * finished jobs at once: the done promise then never settles.
	 */
	private async outcomeOrTimeout(
		delivery: SidecarDelivery,
		finished: Promise<IRun>,
		outcome: Promise<void>,
		expire: () => void,
	): Promise<void> {
		const ms = this.settings.outcomeTimeoutMs;
		if (ms <= 0) return await outcome;
		const timer = new AbortController();
		const stopTimer = () => timer.abort();
		// Closing: close() and its grace period decide from then on.
		this.settleAbort.signal.addEventListener('abort', stopTimer, { once: true });
		const reported = finished.then(
			() => false,
			() => false,
		);
		const expired = await Promise.race([
			reported,
			pause(ms, timer.signal).then(() => !timer.signal.aborted),
		]);
		timer.abort();
		this.settleAbort.signal.removeEventListener('abort', stopTimer);
		if (!expired) return await outcome;

		expire();
		void outcome.catch(() => undefined);
		const left =
			this.settings.ackMode === 'immediately'
				? 'it was acknowledged before the execution'
				: 'left unacknowledged, the sidecar will deliver it again after its claim idle time';
		this.ctx.logger?.warn(
			`Friday Trigger "${this.settings.nodeName}": n8n reported no outcome for the execution of event ${delivery.id} (delivery ${String(delivery.delivery_count ?? '?')}) within the outcome timeout of ${ms / 1000} s; its slot is freed, ${left}`,
		);
	}

	/** An outcome that came after its delivery's outcome timeout: ignored, whatever it is. */
	private lateOutcome(delivery: SidecarDelivery): void {
		this.ctx.logger?.info(
			`Friday Trigger "${this.settings.nodeName}": the execution of event ${delivery.id} (delivery ${String(delivery.delivery_count ?? '?')}) ended after its outcome timeout; ignored, the event is left to the sidecar`,
		);
	}

	/**
	 * Work in progress: every keepAliveMs, until the returned controller aborts (the execution
	 * ended) or the trigger closes, restart the delivery's claim idle time in the sidecar, so a
	 * long execution is not reclaimed and run twice. Failures are logged; the next beat retries.
	 */
	private keepAlive(id: string): AbortController {
		const stop = new AbortController();
		const { ackMode, keepAliveMs, consumer } = this.settings;
		if (ackMode === 'immediately' || keepAliveMs <= 0) return stop;
		const abortAll = () => stop.abort();
		this.settleAbort.signal.addEventListener('abort', abortAll, { once: true });
		void (async () => {
			while (!stop.signal.aborted) {
				await pause(keepAliveMs, stop.signal);
				if (stop.signal.aborted) break;
				try {
					await this.deliveryCall('extend', { consumer, ids: [id] }, stop.signal);
				} catch (error) {
					if (stop.signal.aborted) break;
					this.ctx.logger.warn(
						`Friday Trigger "${this.settings.nodeName}": could not keep event ${id} in progress: ${errorMessage(error)}`,
					);
				}
			}
			this.settleAbort.signal.removeEventListener('abort', abortAll);
		})();
		return stop;
	}

	/**
	 * Gives back deliveries that were read but never emitted to an execution: the sidecar
	 * redelivers them at once, to any consumer of the group, with their delivery count as it
	 * was (no handler saw them, so they do not count toward its max deliveries). One attempt,
	 * RELEASE_REQUEST_TIMEOUT_MS; if it fails they come back after the claim idle time.
	 */
	private async release(deliveries: SidecarDelivery[]): Promise<void> {
		const given = deliveries
			.filter((delivery) => typeof delivery.delivery_count === 'number')
			.map((delivery) => ({ id: delivery.id, delivery_count: delivery.delivery_count as number }));
		if (given.length === 0) return;
		try {
			await this.deliveryCall(
				'release',
				{ consumer: this.settings.consumer, deliveries: given },
				this.settleAbort.signal,
			);
		} catch (error) {
			this.ctx.logger.warn(
				`Friday Trigger "${this.settings.nodeName}": could not give back ${given.length} event(s) never started (${given.map((d) => d.id).join(', ')}): ${errorMessage(error)}; the sidecar will deliver them again after its claim idle time`,
			);
		}
	}

	/** After the execution: ack, or nack with n8n's error message, depending on the mode. */
	private async settle(delivery: SidecarDelivery, run?: IRun, failure?: unknown): Promise<void> {
		const { ackMode } = this.settings;
		if (ackMode === 'immediately' || ackMode === 'laterInWorkflow') return;
		if (this.abandoned) {
			this.ctx.logger.info(
				`Friday Trigger "${this.settings.nodeName}": event ${delivery.id} finished after shutdown; left pending for redelivery`,
			);
			return;
		}
		const failed = failure !== undefined || runFailed(run);
		if (failed && ackMode === 'executionFinishesSuccessfully') {
			await this.nack(delivery.id, failureReason(run, failure));
		} else {
			await this.ack([delivery.id], this.settleAbort.signal);
		}
	}

	private async ack(ids: string[], signal: AbortSignal): Promise<boolean> {
		return await this.withRetries(`acknowledge ${ids.join(', ')}`, signal, async () => {
			await this.deliveryCall('ack', { ids }, signal);
		});
	}

	private async nack(id: string, reason: string): Promise<boolean> {
		const signal = this.settleAbort.signal;
		return await this.withRetries(`reject ${id}`, signal, async () => {
			await this.deliveryCall('nack', { id, reason }, signal);
		});
	}

	/** ack, nack, extend and release on this trigger's stream and group: the one shared delivery request. */
	private async deliveryCall(
		action: DeliveryAction,
		body: IDataObject,
		signal: AbortSignal,
	): Promise<void> {
		const { stream, group, baseUrl } = this.settings;
		await deliveryRequest.call(this.ctx, action, { stream, group }, body, {
			baseUrl,
			abortSignal: signal,
		});
	}

	private async withRetries(
		what: string,
		signal: AbortSignal,
		call: () => Promise<void>,
	): Promise<boolean> {
		let delay = 0;
		for (let attempt = 1; attempt <= SETTLE_ATTEMPTS; attempt++) {
			if (signal.aborted) break;
			try {
				await call();
				return true;
			} catch (error) {
				if (signal.aborted) break;
				const last = attempt === SETTLE_ATTEMPTS || !isRetriable(error);
				this.ctx.logger.warn(
					`Friday Trigger "${this.settings.nodeName}": could not ${what} (attempt ${attempt}/${SETTLE_ATTEMPTS}): ${errorMessage(error)}${last ? '; the sidecar will deliver the event again' : ''}`,
				);
				if (last) break;
				delay = nextBackoff(delay);
				await pause(delay, signal);
			}
		}
		return false;
	}

	// ------------------------------------------------------------------
	// failures and recovery
	// ------------------------------------------------------------------

	private async onFailure(error: unknown): Promise<void> {
		this.failures++;
		this.backoff = nextBackoff(this.backoff);
		const target =
			this.settings.source === 'channel'
				? `channel ${this.settings.channel}`
				: `stream ${this.settings.stream} (group ${this.settings.group})`;
		const text = `Friday Trigger "${this.settings.nodeName}" (workflow ${this.settings.workflowId}) cannot read ${target}: ${errorMessage(error)}. Retrying in ${Math.round(this.backoff / 1000)} s.`;
		if (this.failures === 1 || this.failures % 10 === 0) {
			this.ctx.logger.warn(text);
		} else {
			this.ctx.logger.debug(text);
		}
		if (this.failures === OUTAGE_REPORT_AFTER) {
			this.reportOutage(error);
		}
		await pause(this.backoff, this.pollAbort.signal);
	}

	/**
	 * Non-fatal report: a failed execution (and the error workflow, if any) while the
	 * workflow stays active. emitError is not used: it deactivates the workflow.
	 */
	private reportOutage(error: unknown): void {
		const report = (this.ctx as Partial<ITriggerFunctions>).saveFailedExecution;
		if (typeof report !== 'function') return;
		try {
			report.call(this.ctx, toNodeError(this.ctx.getNode(), error));
		} catch (reportError) {
			this.ctx.logger.debug(
				`Friday Trigger "${this.settings.nodeName}": could not save the outage as a failed execution: ${errorMessage(reportError)}`,
			);
		}
	}

	private onSuccess(): void {
		if (this.failures > 0) {
			this.ctx.logger.info(
				`Friday Trigger "${this.settings.nodeName}" (workflow ${this.settings.workflowId}): sidecar reachable again after ${this.failures} failed attempt(s)`,
			);
		}
		this.failures = 0;
		this.backoff = 0;
	}

	// ------------------------------------------------------------------
	// manual mode ("Listen for test event")
	// ------------------------------------------------------------------

	private async nextEventLoop(): Promise<void> {
		const signal = this.pollAbort.signal;
		while (!this.stopped) {
			let event: SidecarDelivery | null | undefined;
			try {
				const response = (await fridayApiRequest.call(
					this.ctx,
					'GET',
					`/api/v1/streams/${seg(this.settings.stream)}/next`,
					undefined,
					{ block_ms: this.settings.blockMs },
					{
						baseUrl: this.settings.baseUrl,
						timeout: this.settings.blockMs + POLL_TIMEOUT_MARGIN_MS,
						abortSignal: signal,
					},
				)) as { event?: SidecarDelivery | null };
				event = response?.event;
			} catch (error) {
				if (this.stopped) return;
				// The user is watching: show the error instead of retrying in the background.
				this.stopped = true;
				this.ctx.emitError(toNodeError(this.ctx.getNode(), error));
				return;
			}
			if (this.stopped) return;
			if (event) {
				const meta = metaFromDelivery(
					{ ...event, stream: event.stream ?? this.settings.stream },
					{ group: this.settings.group || null, ackMode: this.settings.ackMode, test: true },
				);
				this.stopped = true;
				this.ctx.emit([[buildEventItem(event.payload, meta, this.settings.output)]]);
				return;
			}
		}
	}

	// ------------------------------------------------------------------
	// informational channel (SSE)
	// ------------------------------------------------------------------

	private async subscribeLoop(manual: boolean): Promise<void> {
		const signal = this.pollAbort.signal;
		const path = `/api/v1/channels/${seg(this.settings.channel)}/subscribe`;
		while (!this.stopped) {
			try {
				const body = await fridayApiRequest.call(this.ctx, 'GET', path, undefined, undefined, {
					baseUrl: this.settings.baseUrl,
					encoding: 'stream',
					timeout: SSE_IDLE_TIMEOUT_MS,
					abortSignal: signal,
				});
				this.onSuccess();
				const parser = new SseParser();
				for await (const chunk of body as unknown as AsyncIterable<Uint8Array | string>) {
					if (this.stopped) break;
					for (const event of parser.push(chunk)) {
						if (this.stopped) break;
						if (event.event === 'error') {
							// The sidecar lost its Redis subscription; the stream ends after this.
							throw sidecarApiError(this.ctx.getNode(), 503, event.data, {
								method: 'GET',
								path,
								detail: `GET ${path} sent "event: error" and ended`,
							});
						}
						if (event.event !== 'message') continue;
						this.emitChannelMessage(event.data, manual);
						if (manual) {
							this.stopped = true;
							this.pollAbort.abort();
						}
					}
				}
				if (this.stopped) break;
				this.ctx.logger.info(
					`Friday Trigger "${this.settings.nodeName}": the sidecar closed the subscription to ${this.settings.channel}; reconnecting`,
				);
				await pause(BACKOFF_INITIAL_MS, signal);
			} catch (error) {
				if (this.stopped) break;
				if (manual) {
					this.stopped = true;
					this.ctx.emitError(toNodeError(this.ctx.getNode(), error));
					return;
				}
				await this.onFailure(error);
			}
		}
	}

	private emitChannelMessage(data: string, manual: boolean): void {
		let message: SidecarChannelMessage;
		try {
			const parsed = JSON.parse(data) as unknown;
			if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
				throw new NodeOperationError(this.ctx.getNode(), 'Channel message is not a JSON object');
			}
			message = parsed as SidecarChannelMessage;
		} catch (error) {
			this.ctx.logger.warn(
				`Friday Trigger "${this.settings.nodeName}": skipped a malformed message on ${this.settings.channel}: ${errorMessage(error)}`,
			);
			return;
		}
		const meta = metaFromChannelMessage(
			{ ...message, channel: message.channel ?? this.settings.channel },
			{ test: manual },
		);
		const item = buildEventItem(message.payload ?? ({} as IDataObject), meta, this.settings.output);
		this.ctx.emit([[item]]);
	}
}
