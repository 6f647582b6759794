"""Status: snapshots of streams, groups and consumers as Redis holds them, and the alerts
they raise against the thresholds of the settings."""

from __future__ import annotations

from collections.abc import Sequence

from redis import exceptions as rexc

from . import codec, names
from .context import BusContext, now_ms
from .limits import LAG_COUNT_CAP
from .models import Alert, BusStatus, ConsumerStatus, GroupStatus, StreamStatus
from .replies import ReplyKind, reply_kind
from .settings import Settings, StreamConfig


def alerts(st: StreamStatus, cfg: StreamConfig, s: Settings) -> list[Alert]:
    """The alerts one stream's snapshot raises."""
    out: list[Alert] = []

    def add(group: str | None, metric: str, value: int, threshold: int, message: str) -> None:
        out.append(Alert(st.name, group, metric, value, threshold, message))

    if st.length > s.alert_length:
        add(None, "length", st.length, s.alert_length, f"{st.name} holds {st.length} entries (> {s.alert_length}): backlog")
    if st.length > cfg.retention:
        add(None, "backlog_over_retention", st.length, cfg.retention,
            f"{st.name} holds {st.length} entries, over its retention of {cfg.retention}: unacknowledged entries are kept")
    if st.dead_letter_length >= s.alert_dead_letters:
        add(None, "dead_letters", st.dead_letter_length, s.alert_dead_letters,
            f"{st.name} has {st.dead_letter_length} dead letters: inspect with `friday dlq list {st.name}`")
    for g in st.groups:
        if g.pending > s.alert_pending:
            add(g.name, "pending", g.pending, s.alert_pending, f"{g.name} on {st.name} has {g.pending} pending entries (> {s.alert_pending}): slow consumers")
        if g.lag is not None and g.lag > s.alert_lag:
            add(g.name, "lag", g.lag, s.alert_lag, f"{g.name} on {st.name} is {g.lag} entries behind (> {s.alert_lag})")
        if not g.consumers:
            add(g.name, "no_consumer", 0, 1, f"{g.name} on {st.name} has no consumer")
    return out


class Status:
    def __init__(self, ctx: BusContext) -> None:
        self.ctx = ctx

    async def stream_status(self, stream: str) -> StreamStatus:
        ctx = self.ctx
        cfg = ctx.stream_config(stream)
        now = now_ms()
        try:
            info = await ctx.redis.xinfo_stream(stream)
        except rexc.ResponseError as exc:
            if reply_kind(exc) is not ReplyKind.NO_SUCH_KEY:
                raise
            info = None
        dlq_len = int(await ctx.redis.xlen(ctx.keys.dlq(stream)))
        groups: list[GroupStatus] = []
        oldest_pending: str | None = None
        for g in await ctx.xinfo_groups(stream):
            name = g["name"]
            consumers = [
                ConsumerStatus(name=c["name"], pending=int(c["pending"]), idle_ms=int(c["idle"]))
                for c in await ctx.redis.xinfo_consumers(stream, name)
            ]
            pending = int(g["pending"])
            if pending:
                summary = await ctx.redis.xpending(stream, name)
                if summary and summary.get("min"):
                    m = summary["min"]
                    if oldest_pending is None or names.id_key(m) < names.id_key(oldest_pending):
                        oldest_pending = m
            lag = g.get("lag")
            if lag is None:  # Redis cannot tell (an entry was deleted after the group's position): count
                lag = int(await ctx.scripts.count_after(keys=[stream], args=[g["last-delivered-id"], LAG_COUNT_CAP]))
            groups.append(
                GroupStatus(
                    name=name,
                    consumers=consumers,
                    pending=pending,
                    lag=int(lag),
                    last_delivered_id=g["last-delivered-id"],
                    retry_scheduled=int(await ctx.redis.zcard(ctx.keys.retry(stream, name))),
                )
            )
        length = int(info["length"]) if info else 0
        first = info["first-entry"][0] if info and info.get("first-entry") else None
        last = info["last-entry"][0] if info and info.get("last-entry") else None
        st = StreamStatus(
            name=stream,
            exists=info is not None,
            length=length,
            first_entry_id=first,
            last_entry_id=last,
            dead_letter_length=dlq_len,
            oldest_pending_age_ms=max(0, now - codec.entry_ms(oldest_pending)) if oldest_pending else None,
            groups=groups,
            alerts=[],
        )
        st.alerts = alerts(st, cfg, ctx.settings)
        return st

    async def status(self, streams: Sequence[str] | None) -> BusStatus:
        names_ = list(streams) if streams else self.ctx.stream_names()
        items = [await self.stream_status(n) for n in names_]
        return BusStatus(
            redis_version=self.ctx.redis_version,
            streams=items,
            channels=self.ctx.channel_names(),
            alerts=[a for st in items for a in st.alerts],
            generated_at_ms=now_ms(),
        )
