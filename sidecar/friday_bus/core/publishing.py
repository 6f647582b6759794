"""Publishing: check and encode events, then write them (streams: one atomic script call;
channels: Pub/Sub). See :meth:`~friday_bus.core.bus.EventBus.publish_batch` for the contract."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any, Literal

from . import codec
from .context import BusContext, now_ms
from .errors import FridayError, InvalidArgument
from .limits import MAX_BATCH, MAX_PAYLOAD_KEYS
from .models import EventMeta, PublishRequest, PublishResult
from .settings import StreamConfig


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
        return EventMeta(event_id=req.event_id, source=req.source, correlation_id=req.correlation_id)

    def check(self, req: PublishRequest, now: int) -> CheckedEvent:
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
        started = time.perf_counter()
        now = now_ms()
        checked: list[CheckedEvent] = []
        for i, req in enumerate(reqs):
            try:
                checked.append(self.check(req, now))
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
                receivers = await self.ctx.redis.publish(reqs[i].target, data)
                results[i] = PublishResult(target=reqs[i].target, kind="channel", entry_id=None, receivers=int(receivers))
        elapsed = time.perf_counter() - started
        out = [r for r in results if r is not None]
        for r in out:
            self.ctx.observer.published(r.target, r.kind, elapsed / len(out), r.duplicate)
        return out

    async def _write_streams(
        self,
        reqs: Sequence[PublishRequest],
        checked: list[CheckedEvent],
        idx: list[int],
        results: list[PublishResult | None],
    ) -> None:
        """One event without idempotency key or cap: a plain XADD. Anything else: one PUBLISH
        script call, atomic for the whole batch (caps checked before anything is written).
        An idempotency key is its own Redis key (``keys.idem``, holding the first entry id),
        never a field of the entry: it works the same in every wire format."""
        if len(idx) == 1:
            i = idx[0]
            c = checked[i]
            if reqs[i].event_id is None and c.config is not None and c.config.max_backlog is None:
                entry_id = await self.ctx.redis.xadd(reqs[i].target, c.fields)  # type: ignore[arg-type]
                results[i] = PublishResult(target=reqs[i].target, kind="stream", entry_id=entry_id)
                return
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
        replies = await self.ctx.scripts.publish(keys=keys, args=args)
        for i, (entry_id, dup) in zip(idx, replies):
            results[i] = PublishResult(target=reqs[i].target, kind="stream", entry_id=entry_id, duplicate=bool(int(dup)))
