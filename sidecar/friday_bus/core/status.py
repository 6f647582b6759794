"""Status: snapshots of streams, groups and consumers as Redis holds them, and the alerts
they raise against the thresholds of the settings (:data:`ALERT_METRICS`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis import exceptions as rexc

from . import codec, names
from .context import BusContext, now_ms
from .limits import LAG_COUNT_CAP
from .models import Alert, BusStatus, ConsumerStatus, GroupStatus, StreamStatus
from .replies import ReplyKind, reply_kind
from .settings import Settings, StreamConfig

ALERT_METRICS: tuple[str, ...] = ("backlog", "backlog_over_retention", "pending", "lag", "no_consumer", "dead_letters")
"""Every alert the status raises (``Alert.metric``). ``dead_letters`` is the stream's (``group`` is
None); the others are each group's. Every one is exported as ``friday_alert{stream,group,metric}``
(friday_bus/metrics.py) and has a rule in deploy/prometheus/alerts.yml.

* ``backlog``: the group's unacknowledged backlog (:func:`backlog`) > FRIDAY_ALERT_LENGTH (1000,
  the seed's "stream length > 1000 (backlog)"). The stream's length itself is not alerted on: the
  safe trim keeps up to ``retention`` (10 000) acknowledged entries by design.
* ``backlog_over_retention``: that backlog > the stream's ``retention``: the safe trim must keep
  the unacknowledged entries, so the stream grows past its retention (up to ``max_backlog``, if set).
* ``pending`` > FRIDAY_ALERT_PENDING (100), ``lag`` > FRIDAY_ALERT_LAG (500), ``no_consumer``
  (fewer than 1 consumer), ``dead_letters`` >= FRIDAY_ALERT_DEAD_LETTERS (1): the seed's.
"""


def backlog(g: GroupStatus) -> int:
    """A group's unacknowledged backlog: the stream's entries the group has not acknowledged yet,
    i.e. not yet delivered to it (``lag``) plus delivered and not acked (``pending``)."""
    return (g.lag or 0) + g.pending


@dataclass(frozen=True, slots=True)
class AlertCheck:
    """One alert condition evaluated on a snapshot, raised or not."""

    stream: str
    group: str | None
    metric: str
    value: int
    threshold: int
    firing: bool
    message: str

    def alert(self) -> Alert:
        return Alert(self.stream, self.group, self.metric, self.value, self.threshold, self.message)


def alert_checks(st: StreamStatus, cfg: StreamConfig, s: Settings) -> list[AlertCheck]:
    """Every alert condition of one stream's snapshot (each metric of :data:`ALERT_METRICS`, per
    group where it is a group's), raised or not: what the status reports and what /metrics exports."""
    out: list[AlertCheck] = []

    def check(group: str | None, metric: str, value: int, threshold: int, firing: bool, message: str) -> None:
        out.append(AlertCheck(st.name, group, metric, value, threshold, firing, message))

    n = st.dead_letter_length
    check(None, "dead_letters", n, s.alert_dead_letters, n >= s.alert_dead_letters,
          f"{st.name} has {n} dead letters: inspect with `friday dlq list {st.name}`")
    for g in st.groups:
        b = backlog(g)
        lag = g.lag or 0
        check(g.name, "backlog", b, s.alert_length, b > s.alert_length,
              f"{g.name} on {st.name} has {b} entries not acknowledged yet ({lag} not delivered, {g.pending} pending; "
              f"> {s.alert_length}): backlog")
        cap = f"; publishing fails once the stream holds {cfg.max_backlog}" if cfg.max_backlog else ""
        check(g.name, "backlog_over_retention", b, cfg.retention, b > cfg.retention,
              f"{g.name} on {st.name} has {b} entries not acknowledged yet, over the stream's retention of "
              f"{cfg.retention}: the trim keeps them, the stream grows past its retention{cap}")
        check(g.name, "pending", g.pending, s.alert_pending, g.pending > s.alert_pending,
              f"{g.name} on {st.name} has {g.pending} pending entries (> {s.alert_pending}): slow consumers")
        check(g.name, "lag", lag, s.alert_lag, g.lag is not None and g.lag > s.alert_lag,
              f"{g.name} on {st.name} is {lag} entries behind (> {s.alert_lag})")
        check(g.name, "no_consumer", len(g.consumers), 1, not g.consumers, f"{g.name} on {st.name} has no consumer")
    return out


def alerts(st: StreamStatus, cfg: StreamConfig, s: Settings) -> list[Alert]:
    """The alerts one stream's snapshot raises."""
    return [c.alert() for c in alert_checks(st, cfg, s) if c.firing]


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
