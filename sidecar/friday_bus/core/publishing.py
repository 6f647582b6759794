"""Publishing: check and encode events, then write them (streams: one atomic script call per
slot group, see below; channels: Pub/Sub). See :meth:`~friday_bus.core.bus.EventBus.publish_batch`
for the contract.

Guarantee per mode, plainly:

* FRIDAY_MIN_REPLICAS_ACK=0 (default): a publish returns once the master holds the entry (and
  its AOF per its fsync policy). Replication is asynchronous: if the master dies before its
  replica copied the entry, a failover (sentinel or cluster) loses it although the publish was
  acknowledged.
* FRIDAY_MIN_REPLICAS_ACK=N: a publish returns only once N replicas hold the entry in memory
  (WAIT on the connection that wrote it), so a failover to one of them keeps it. If they do not
  confirm within FRIDAY_REPLICA_ACK_TIMEOUT_MS the publish answers Unavailable (503 / UNAVAILABLE):
  the entry may or may not exist, and retrying with the same event_id writes nothing twice (the
  Python client does so, with an event_id it generates when the caller gave none). WAIT does not
  fsync: a crash of the master and of every replica together can still lose it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from . import codec
from .connection import AckedWrite
from .context import BusContext, now_ms
from .errors import FridayError, InvalidArgument, Unavailable
from .limits import MAX_BATCH, MAX_PAYLOAD_KEYS
from .models import EventMeta, PublishRequest, PublishResult
from .settings import StreamConfig

log = logging.getLogger("friday.bus")


@dataclasses.dataclass(frozen=True, slots=True)
class CheckedEvent:
    """One event that passed every check. A stream event is encoded already (``fields``:
    its entry, measured against the size limit) and has its stream's ``config``."""

    kind: Literal["stream", "channel"]
    meta: EventMeta
    config: StreamConfig | None = None
    fields: dict[str, str] | None = None


class Publishing:
    def __init__(self, ctx: BusContext) -> None:
        self.ctx = ctx

    @staticmethod
    def _meta(req: PublishRequest) -> EventMeta:
        codec.validate_meta_value("event_id", req.event_id)
        codec.validate_meta_value("source", req.source)
        codec.validate_meta_value("correlation_id", req.correlation_id)
        if req.traceparent is None:  # a tracestate alone is ignored (W3C)
            return EventMeta(event_id=req.event_id, source=req.source, correlation_id=req.correlation_id)
        tracestate = req.tracestate or None  # an empty tracestate header is no tracestate (W3C)
        codec.validate_trace_context(req.traceparent, tracestate)
        return EventMeta(event_id=req.event_id, source=req.source, correlation_id=req.correlation_id,
                         traceparent=req.traceparent, tracestate=tracestate)

    def check(self, req: PublishRequest, now: int, spans: list[Any] | None = None) -> CheckedEvent:
        """Check one event; for a stream, also encode it in the stream's wire format (the size
        limit applies to the encoded form). In the ``seed`` format the entry holds the payload
        fields only: the metadata is not written, and ``event_id`` still dedupes (its key lives
        beside the entry, see :meth:`_write_streams`)."""
        if not isinstance(req.target, str) or not req.target:
            raise InvalidArgument("stream is required: name a critical stream or an informational channel", field="stream")
        codec.check_payload_shape(req.payload)
        if len(req.payload) > MAX_PAYLOAD_KEYS:
            raise InvalidArgument(f"payload has {len(req.payload)} keys; the limit is {MAX_PAYLOAD_KEYS}: nest them", field="payload")
        meta = self._meta(req)
        if spans is not None:  # tracing on: the event stores its publish span's context
            span, meta = self.ctx.tracer.publish_started(  # type: ignore[union-attr]
                req.target, "channel" if self.ctx.is_channel(req.target) else "stream", meta)
            spans.append(span)
        if self.ctx.is_channel(req.target):
            codec.validate_payload(req.payload, self.ctx.settings.max_payload_bytes)
            return CheckedEvent("channel", meta)
        cfg = self.ctx.stream_config(req.target)
        fields = codec.encode_event(req.payload, meta, now, cfg.wire_format)
        codec.check_size(fields, self.ctx.settings.max_payload_bytes)
        return CheckedEvent("stream", meta, cfg, fields)

    async def publish(self, req: PublishRequest) -> PublishResult:
        return (await self.publish_batch([req]))[0]

    async def publish_batch(self, reqs: Sequence[PublishRequest]) -> list[PublishResult]:
        if not reqs:
            raise InvalidArgument("events must hold at least one event", field="events")
        if len(reqs) > MAX_BATCH:
            raise InvalidArgument(f"a batch holds at most {MAX_BATCH} events (got {len(reqs)}); split it", field="events")
        tracer = self.ctx.tracer
        if tracer is None:  # tracing off (the default): nothing more per event
            return await self._publish_batch(reqs, None)
        spans: list[Any] = []
        try:
            out = await self._publish_batch(reqs, spans)
        except BaseException as exc:
            tracer.publish_failed(spans, exc)
            raise
        tracer.publish_ended(spans, out)
        return out

    async def _publish_batch(self, reqs: Sequence[PublishRequest], spans: list[Any] | None) -> list[PublishResult]:
        started = time.perf_counter()
        now = now_ms()
        checked: list[CheckedEvent] = []
        for i, req in enumerate(reqs):
            try:
                checked.append(self.check(req, now, spans))
            except FridayError as exc:
                if len(reqs) > 1:
                    exc.message = f"events[{i}]: {exc.message}"
                    exc.args = (exc.message,)
                raise
        results: list[PublishResult | None] = [None] * len(reqs)
        stream_idx = [i for i, c in enumerate(checked) if c.kind == "stream"]
        if stream_idx:
            await self._write_streams(reqs, checked, stream_idx, results)
        for i, c in enumerate(checked):
            if c.kind == "channel":
                data = codec.encode_channel_message(reqs[i].payload, c.meta, now)
                receivers = await self._publish_channel(reqs[i].target, data)
                results[i] = PublishResult(target=reqs[i].target, kind="channel", entry_id=None, receivers=int(receivers))
        elapsed = time.perf_counter() - started
        out = [r for r in results if r is not None]
        counts: dict[tuple[str, str, bool], int] = {}
        for r in out:
            key = (r.target, r.kind, r.duplicate)
            counts[key] = counts.get(key, 0) + 1
        each = elapsed / len(out)
        for (target, kind, duplicate), n in counts.items():  # one observer call per target, not per event
            self.ctx.observer.published(target, kind, each, duplicate, n)
        return out

    async def _publish_channel(self, channel: str, data: str) -> int:
        """PUBLISH. On a cluster it goes to the master owning the channel's slot, where the
        sidecar's own subscriptions to that channel listen first (core/consuming.py): Redis
        broadcasts the message to every node, but PUBLISH counts only the subscribers of the
        node that took it, so ``receivers`` counts those of that node."""
        redis = self.ctx.redis
        if isinstance(redis, RedisCluster):
            await redis.initialize()
            return int(await redis.execute_command("PUBLISH", channel, data, target_nodes=redis.get_node_from_key(channel)))
        return int(await redis.publish(channel, data))

    async def _write_streams(
        self,
        reqs: Sequence[PublishRequest],
        checked: list[CheckedEvent],
        idx: list[int],
        results: list[PublishResult | None],
    ) -> None:
        """One event without idempotency key or cap: a plain XADD. Anything else: one PUBLISH
        script call per slot group (standalone, sentinel: one call for the whole batch; cluster:
        one per hash slot the batch's streams fall in), each atomic, caps checked in it before it
        writes. An idempotency key is its own Redis key (``keys.idem``, holding the first entry
        id, in its stream's slot), never a field of the entry: it works the same in every wire format.

        With FRIDAY_MIN_REPLICAS_ACK=N each call is followed by WAIT on its connection; a call not
        confirmed by N replicas in time raises Unavailable (the rest of the batch is not written)."""
        if len(idx) == 1:
            i = idx[0]
            c = checked[i]
            if reqs[i].event_id is None and c.config is not None and c.config.max_backlog is None:
                target = reqs[i].target
                if self.ctx.replicas_ack == 0:
                    entry_id = await self.ctx.redis.xadd(target, c.fields)  # type: ignore[arg-type]
                else:
                    flat = [x for kv in c.fields.items() for x in kv]  # type: ignore[union-attr]
                    ack = await self.ctx.acked_command(("XADD", target, "*", *flat), key=target)
                    self._confirmed(ack, [reqs[i]])
                    entry_id = ack.result
                results[i] = PublishResult(target=target, kind="stream", entry_id=entry_id)
                return
        groups = self._slot_groups(reqs, idx)
        if len(groups) > 1:
            await self._precheck_caps(reqs, checked, idx)
        written: list[int] = []
        for group in groups:
            try:
                await self._write_group(reqs, checked, group, results)
            except BaseException:
                if written:
                    log.warning(
                        "batch split by slot: events %s were written before events %s failed; retrying with the same "
                        "event_ids writes nothing twice", written, group,
                    )
                raise
            written += group

    def _slot_groups(self, reqs: Sequence[PublishRequest], idx: list[int]) -> list[list[int]]:
        """The batch's stream events grouped by hash slot (cluster only), in order of first appearance.
        Every key of a group (its streams and their idempotency keys) is in one slot."""
        if self.ctx.mode != "cluster":
            return [idx]
        by_slot: dict[int, list[int]] = {}
        for i in idx:
            by_slot.setdefault(key_slot(reqs[i].target.encode()), []).append(i)
        return list(by_slot.values())

    async def _precheck_caps(self, reqs: Sequence[PublishRequest], checked: list[CheckedEvent], idx: list[int]) -> None:
        """A batch split in several calls: refuse it before the first call when a capped stream is
        already too full for its share, so that a full backlog rarely leaves a batch half written
        (each call checks again, atomically, before it writes)."""
        planned: dict[str, tuple[int, int]] = {}
        for i in idx:
            cap = checked[i].config.max_backlog if checked[i].config else None
            if cap:
                n, _ = planned.get(reqs[i].target, (0, cap))
                planned[reqs[i].target] = (n + 1, cap)
        for stream, (n, cap) in planned.items():
            length = int(await self.ctx.redis.xlen(stream))
            if length + n > cap:
                raise rexc.ResponseError(f"BACKLOG_FULL {stream} {length} {cap}")

    async def _write_group(
        self, reqs: Sequence[PublishRequest], checked: list[CheckedEvent], idx: list[int], results: list[PublishResult | None]
    ) -> None:
        keys: list[str] = []
        key_pos: dict[str, int] = {}

        def pos(key: str) -> int:
            if key not in key_pos:
                keys.append(key)
                key_pos[key] = len(keys)
            return key_pos[key]

        args: list[Any] = [len(idx)]
        for i in idx:
            req, c = reqs[i], checked[i]
            assert c.config is not None and c.fields is not None
            flat: list[str] = []
            for k, v in c.fields.items():
                flat.append(k)
                flat.append(v)
            args += [
                pos(req.target),
                pos(self.ctx.keys.idem(req.target, req.event_id)) if req.event_id else 0,
                self.ctx.settings.idempotency_window_s,
                c.config.max_backlog or 0,
                len(flat),
                *flat,
            ]
        ack = await self.ctx.acked_script(self.ctx.scripts.publish, keys, args)
        self._confirmed(ack, [reqs[i] for i in idx])
        for i, (entry_id, dup) in zip(idx, ack.result):
            results[i] = PublishResult(target=reqs[i].target, kind="stream", entry_id=entry_id, duplicate=bool(int(dup)))

    def _confirmed(self, ack: AckedWrite, reqs: Sequence[PublishRequest]) -> None:
        """Raise Unavailable when fewer replicas than FRIDAY_MIN_REPLICAS_ACK confirmed the write."""
        if ack.confirmed:
            return
        s = self.ctx.settings
        self.ctx.observer.replica_ack_missing("publish", ack.replicas, ack.requested)
        keyless = [r.target for r in reqs if not r.event_id]
        retry = (
            "retrying with the same event_id writes nothing twice"
            if not keyless else
            "retrying with the same event_id writes nothing twice; events without an event_id "
            f"(on {', '.join(sorted(set(keyless)))}) may be written twice by a retry"
        )
        raise Unavailable(
            f"the publish was not confirmed by {ack.requested} replica(s) within {s.replica_ack_timeout_ms} ms "
            f"(FRIDAY_MIN_REPLICAS_ACK; {ack.replicas} confirmed): the entry may or may not exist; {retry}",
            details={"replicas": ack.replicas, "min_replicas_ack": ack.requested, "may_exist": True},
        )
