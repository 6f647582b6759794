"""Consuming: read (new entries, due retries, reclaimed entries), recover a vanished group,
settle deliveries (ack, extend, nack), give back deliveries never handed to a handler (release),
peek at a stream, and listen to informational channels.
The contracts are on the :class:`~friday_bus.core.bus.EventBus` methods of the same names."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster

from . import codec, names
from .connection import AckedWrite
from .context import BusContext, check_read_args, now_ms
from .errors import InvalidArgument, NotFound, Unavailable
from .limits import CLAIM_SCAN_MAX, MAX_ACK_IDS, MAX_REASON_LENGTH
from .models import ChannelMessage, Delivery, NackResult
from .replies import ReplyKind, reply_kind, vanished
from .settings import StreamConfig

log = logging.getLogger("friday.bus")

NOGROUP_PAUSE_S = 1.0
"""Least time between two recoveries of the same vanished group: never a hot loop, whatever deletes the stream."""

GroupKey = tuple[str, str]
"""(stream, group)"""

CONSUMER_CACHE_S = 60.0
"""How long a consumer this process created (XGROUP CREATECONSUMER) is trusted to exist: a
consumer deleted meanwhile (``friday`` idle-consumer cleanup, by hand) is created again by
its next read after that."""
CONSUMER_CACHE_MAX = 100_000
"""Most (stream, group, consumer) remembered; beyond, the cache starts afresh (one more
CREATECONSUMER each, harmless)."""



class ClaimSchedule:
    """When a read of a (stream, group) runs the claim script (due retries, idle entries of
    other consumers, dead-lettering), instead of only reading new entries.

    A group is claimed at most every ``interval_s``, unless a nacked entry falls due sooner
    or the last claim came back full (more may be waiting). Times are any monotonic clock
    in seconds (the event loop's), given by the caller.
    """

    def __init__(self, interval_s: float, nogroup_pause_s: float = NOGROUP_PAUSE_S) -> None:
        self.interval_s = interval_s
        self.nogroup_pause_s = nogroup_pause_s
        self._last: dict[GroupKey, float] = {}
        self._due: dict[GroupKey, float] = {}
        self._nogroup: dict[GroupKey, float] = {}

    def due(self, key: GroupKey, now: float) -> bool:
        """Should a read claim before reading new entries?"""
        last = self._last.get(key)
        return last is None or now - last >= self.interval_s or self._due.get(key, math.inf) <= now

    def claimed(self, key: GroupKey, now: float) -> None:
        """A claim ran at ``now``: every retry due until now is taken care of."""
        self._last[key] = now
        self._due.pop(key, None)

    def more_waiting(self, key: GroupKey) -> None:
        """The last claim was full: claim again on the next read."""
        self._last.pop(key, None)

    def released(self, key: GroupKey) -> None:
        """Deliveries of the group were given back (claimable at once): claim on the next read."""
        self._last.pop(key, None)

    def retry_at(self, key: GroupKey, at: float) -> None:
        """A nacked entry falls due at ``at``."""
        self._due[key] = min(self._due.get(key, math.inf), at)

    def next_wait(self, key: GroupKey, now: float) -> float:
        """Longest a read may block on new entries before it should claim again."""
        return min(self.interval_s, max(0.0, self._due.get(key, math.inf) - now))

    def nogroup_backoff(self, key: GroupKey, now: float) -> float:
        """How long to wait before recovering the vanished group now; the recovery is then counted."""
        last = self._nogroup.get(key)
        wait = 0.0 if last is None else max(0.0, self.nogroup_pause_s - (now - last))
        self._nogroup[key] = now + wait
        return wait


_DOWN = (rexc.ConnectionError, rexc.TimeoutError, OSError)
_REDIS_ARGS = frozenset(inspect.signature(aioredis.Redis.__init__).parameters)
"""What a plain client takes of a cluster node's connection options (credentials, TLS, timeouts...)."""


def dead_letter_unconfirmed(ctx: BusContext, ack: AckedWrite, stream: str, group: str, n: int) -> None:
    """A script that dead-lettered ``n`` entries was not confirmed by FRIDAY_MIN_REPLICAS_ACK replicas:
    log and count it; the caller's answer stays as it is. Nothing is lost: the script's effects
    (dead letter written, original acked) replicate together or not at all, so a failover before
    they reached a replica leaves the original pending there, and it is dead-lettered again."""
    if ack.confirmed:
        return
    ctx.unconfirmed_dead_letters += n
    ctx.observer.replica_ack_missing("dead_letter", ack.replicas, ack.requested)
    log.warning(
        "stream %s group %s: %d dead letter(s) not confirmed by %d replica(s) within %d ms (%d confirmed); "
        "if the master fails before they replicate, the entries are pending again and dead-lettered again",
        stream, group, n, ack.requested, ctx.settings.replica_ack_timeout_ms, ack.replicas,
    )


def _delivery(stream: str, group: str, consumer: str, entry_id: str, fields: Any, count: int) -> Delivery:
    if isinstance(fields, list):  # raw Lua reply: flat [k, v, k, v, ...]
        fields = dict(zip(fields[0::2], fields[1::2]))
    payload, meta = codec.decode_event(entry_id, fields or {})
    return Delivery(stream, group, consumer, entry_id, payload, meta, int(count))


MAX_RELEASE_COUNT = 2**53 - 1
"""Largest delivery count a release may name: held exactly by the Lua script's numbers."""


def _release_pairs(deliveries: Sequence[tuple[str, int] | Delivery]) -> list[tuple[str, int]]:
    """(entry id, delivery count) of each delivery to release, checked like the ids of an ack."""
    if not deliveries:
        raise InvalidArgument("deliveries must hold at least one delivery", field="deliveries")
    if len(deliveries) > MAX_ACK_IDS:
        raise InvalidArgument(f"release at most {MAX_ACK_IDS} deliveries at a time", field="deliveries")
    pairs: list[tuple[str, int]] = []
    for d in deliveries:
        if isinstance(d, Delivery):
            eid, count = d.entry_id, d.delivery_count
        else:
            try:
                eid, count = d
            except (TypeError, ValueError):
                raise InvalidArgument(
                    f"each delivery is an (entry id, delivery count) pair or a Delivery (got {d!r})", field="deliveries"
                ) from None
        names.check_entry_id(eid, "deliveries")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_RELEASE_COUNT:
            raise InvalidArgument(
                f"delivery_count must be the count the delivery was handed out with, 1 or more (got {count!r})",
                field="delivery_count",
            )
        pairs.append((eid, count))
    return pairs


def _check_ids(entry_ids: Sequence[str], verb: str) -> None:
    if not entry_ids:
        raise InvalidArgument("ids must hold at least one entry id", field="ids")
    if len(entry_ids) > MAX_ACK_IDS:
        raise InvalidArgument(f"{verb} at most {MAX_ACK_IDS} ids at a time", field="ids")
    for eid in entry_ids:
        names.check_entry_id(eid, "ids")


class Consuming:
    def __init__(self, ctx: BusContext) -> None:
        self.ctx = ctx
        self.schedule = ClaimSchedule(ctx.settings.claim_interval_ms / 1000)
        self._consumers: dict[tuple[str, str, str], float] = {}

    # ------------------------------------------------------------------ consumers
    async def _ensure_consumer(self, stream: str, group: str, consumer: str) -> None:
        """Create the consumer before its first read waits: Redis 7.0 creates it only when a group
        read hands it an entry, so a reader waiting on an idle stream was no consumer (status: none,
        alert no_consumer). Once per (stream, group, consumer) per process, trusted for
        :data:`CONSUMER_CACHE_S`; forgotten when the group is recovered. A vanished group is left to
        the read (its NOGROUP recovery)."""
        key = (stream, group, consumer)
        now = asyncio.get_running_loop().time()
        if now - self._consumers.get(key, -math.inf) < CONSUMER_CACHE_S:
            return
        try:
            await self.ctx.redis.xgroup_createconsumer(stream, group, consumer)
        except rexc.ResponseError as exc:
            if vanished(exc) or reply_kind(exc).missing:
                return  # the read that follows recovers the group, then creates the consumer
            raise
        if len(self._consumers) >= CONSUMER_CACHE_MAX:
            self._consumers.clear()
        self._consumers[key] = now

    def _forget_consumers(self, stream: str, group: str) -> None:
        """The group was recreated: its consumers are gone with it."""
        for key in [k for k in self._consumers if k[0] == stream and k[1] == group]:
            del self._consumers[key]

    # ------------------------------------------------------------------ read
    async def read(self, stream: str, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        names.check_consumer(consumer)
        check_read_args(count, block_ms)
        cfg = await self.ctx.check_group(stream, group)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        key = (stream, group)
        while True:
            if self.schedule.due(key, loop.time()):
                claimed = await self._claim(cfg, group, consumer, count)
                if claimed:
                    return claimed
            remaining = deadline - loop.time()
            wait = min(remaining, self.schedule.next_wait(key, loop.time()))
            await self._ensure_consumer(stream, group, consumer)
            try:
                reply = await self.ctx.blocking.xreadgroup(
                    group, consumer, {stream: ">"}, count=count, block=max(1, int(wait * 1000)) if wait > 0 else None
                )
            except rexc.ResponseError as exc:
                kind = reply_kind(exc)
                if kind is ReplyKind.UNBLOCKED and not vanished(exc):
                    # the server ended the wait (a master demoted in a failover, CLIENT UNBLOCK): retriable
                    raise Unavailable(f"Redis ended a blocked read ({exc}); retry") from exc
                if not vanished(exc):
                    raise
                if kind is ReplyKind.UNBLOCKED:
                    log.warning("stream %s was deleted under a blocked read of group %s: recovering it", stream, group)
                await self._recover_nogroup(cfg, group)
                if deadline - loop.time() <= 0:
                    return []
                continue
            if reply:
                entries = reply[0][1]
                out = [_delivery(stream, group, consumer, eid, fields, 1) for eid, fields in entries if fields is not None]
                self.ctx.observer.delivered(stream, group, len(out))
                if self.ctx.tracer is not None:
                    self.ctx.tracer.delivered(out)
                return out
            if deadline - loop.time() <= 0:
                return []

    async def _claim(self, cfg: StreamConfig, group: str, consumer: str, count: int) -> list[Delivery]:
        stream = cfg.name
        key = (stream, group)
        self.schedule.claimed(key, asyncio.get_running_loop().time())
        try:
            ack = await self.ctx.acked_script(
                self.ctx.scripts.claim,
                self.ctx.keys.group_keys(stream, group),
                [group, consumer, now_ms(), count, cfg.claim_idle_ms, cfg.max_deliveries, min(CLAIM_SCAN_MAX, count * 4 + 16)],
            )
        except rexc.ResponseError as exc:
            if reply_kind(exc) is ReplyKind.NOGROUP:
                await self._recover_nogroup(cfg, group)
                return []
            raise
        entries, gone, dead, reclaimed, _retried = ack.result
        if dead:
            dead_letter_unconfirmed(self.ctx, ack, stream, group, int(dead))
        observer = self.ctx.observer
        if gone:
            log.warning("stream %s group %s: %d pending entries were trimmed or deleted before their ack; acked away", stream, group, gone)
            observer.gone(stream, group, int(gone))
        if dead:
            log.warning("stream %s group %s: %d entries dead-lettered after %d deliveries", stream, group, dead, cfg.max_deliveries)
            observer.dead_lettered(stream, group, int(dead))
        if reclaimed:
            observer.reclaimed(stream, group, int(reclaimed))
        if len(entries) >= count:
            self.schedule.more_waiting(key)
        out = [_delivery(stream, group, consumer, e[0], e[1], e[2]) for e in entries]
        if out:
            observer.delivered(stream, group, len(out))
            if self.ctx.tracer is not None:
                self.ctx.tracer.delivered(out)
        return out

    async def _recover_nogroup(self, cfg: StreamConfig, group: str) -> None:
        """The stream or the group vanished (Redis restarted empty, the stream was deleted, also under a
        blocked read): recreate a topology group once. A group created at run time (not in the
        topology) is not recreated: NotFound says it no longer exists."""
        stream = cfg.name
        self._forget_consumers(stream, group)
        if group not in cfg.groups:
            self.ctx.forget_groups(stream)
            if self.ctx.mode == "sentinel":
                # Either client may still be on a node the sentinels no longer name (a demoted
                # master, a restarted one not yet resynced): move both to the master named now, so
                # the question below is answered by the master and not by a stale node.
                with contextlib.suppress(Exception):
                    await self.ctx.refresh_master()
            if group in await self.ctx.existing_groups(stream, refresh=True):
                # The master holds it: the read was served by another node.
                raise Unavailable(
                    f"group {group!r} exists on stream {stream!r}, but the Redis node that served the read does not "
                    "hold it (a failover in progress?); retry"
                )
            raise NotFound(f"group {group!r} no longer exists on stream {stream!r}", field="group")
        wait = self.schedule.nogroup_backoff((stream, group), asyncio.get_running_loop().time())
        if wait > 0:
            await asyncio.sleep(wait)
        exists = bool(await self.ctx.redis.exists(stream))
        created = await self.ctx.create_group(stream, group, "$" if exists else "0")
        if created:
            if exists:
                log.error(
                    "group %s was missing on existing stream %s: recreated at the end ($). Entries published before "
                    "now are not delivered to it; rewind with `friday replay` if they must be",
                    group, stream,
                )
            else:
                log.warning("stream %s vanished (Redis restarted empty?): recreated it with group %s", stream, group)

    # ------------------------------------------------------------------ settle
    async def ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> int:
        _check_ids(entry_ids, "ack")
        await self.ctx.check_group(stream, group)
        keys = self.ctx.keys
        async with self.ctx.redis.pipeline(transaction=False) as pipe:
            pipe.xack(stream, group, *entry_ids)
            pipe.zrem(keys.retry(stream, group), *entry_ids)
            pipe.hdel(keys.reasons(stream, group), *entry_ids)
            acked, _, _ = await pipe.execute()
        self.ctx.observer.acked(stream, group, int(acked))
        if self.ctx.tracer is not None:
            self.ctx.tracer.acked(stream, group, entry_ids, int(acked))
        return int(acked)

    async def extend(self, stream: str, group: str, consumer: str, entry_ids: Sequence[str]) -> int:
        names.check_consumer(consumer)
        _check_ids(entry_ids, "extend")
        await self.ctx.check_group(stream, group)
        return int(await self.ctx.scripts.extend(keys=[stream], args=[group, consumer, *entry_ids]))

    async def release(self, stream: str, group: str, consumer: str, deliveries: Sequence[tuple[str, int] | Delivery]) -> int:
        names.check_consumer(consumer)
        pairs = _release_pairs(deliveries)
        cfg = await self.ctx.check_group(stream, group)
        args: list[Any] = [group, consumer, cfg.claim_idle_ms]
        for eid, count in pairs:
            args += [eid, count]
        released = int(await self.ctx.scripts.release(keys=[stream, self.ctx.keys.retry(stream, group)], args=args))
        if released:
            self.schedule.released((stream, group))
            log.debug("stream %s group %s: %s gave back %d of %d deliveries", stream, group, consumer, released, len(pairs))
        return released

    async def nack(self, stream: str, group: str, entry_id: str, reason: str) -> NackResult:
        names.check_entry_id(entry_id)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidArgument("reason is required: say why the event failed", field="reason")
        if len(reason) > MAX_REASON_LENGTH:
            reason = reason[: MAX_REASON_LENGTH - 3] + "..."
        cfg = await self.ctx.check_group(stream, group)
        now = now_ms()
        ack = await self.ctx.acked_script(
            self.ctx.scripts.nack,
            self.ctx.keys.group_keys(stream, group),
            [group, entry_id, reason, now, cfg.max_deliveries, *(cfg.backoff.delay_ms(n) for n in range(1, cfg.max_deliveries + 1))],
        )
        reply = ack.result
        outcome = reply[0]
        if outcome == "dead":
            dead_letter_unconfirmed(self.ctx, ack, stream, group, 1)
        observer = self.ctx.observer
        observer.nacked(stream, group)
        if self.ctx.tracer is not None:
            self.ctx.tracer.nacked(stream, group, entry_id, outcome, reply[1] if outcome == "dead" else None)
        if outcome == "retry":
            due = int(reply[1])
            loop = asyncio.get_running_loop()
            self.schedule.retry_at((stream, group), loop.time() + max(0, due - now_ms()) / 1000)
            return NackResult(entry_id, "retry", retry_at_ms=due)
        if outcome == "dead":
            observer.dead_lettered(stream, group, 1)
            log.warning("stream %s group %s: entry %s dead-lettered: %s", stream, group, entry_id, reason)
            return NackResult(entry_id, "dead_lettered", dead_letter_id=reply[1])
        if outcome == "gone":
            observer.gone(stream, group, 1)
            raise NotFound(f"entry {entry_id} was trimmed or deleted from {stream} before it could be dead-lettered; acked away", field="id")
        raise NotFound(f"entry {entry_id} is not pending in group {group!r} of {stream!r} (already acked, or never delivered)", field="id")

    # ------------------------------------------------------------------ without a group
    async def peek_next(self, stream: str, block_ms: int) -> Delivery | None:
        self.ctx.stream_config(stream)
        check_read_args(1, block_ms)
        reply = await self.ctx.blocking.xread({stream: "$"}, count=1, block=block_ms if block_ms > 0 else None)
        if not reply:
            return None
        eid, fields = reply[0][1][0]
        return _delivery(stream, "", "", eid, fields, 0)

    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[ChannelMessage]:
        if not channels:
            raise InvalidArgument("name at least one channel", field="channel")
        for c in channels:
            self.ctx.check_channel(c)
        if isinstance(self.ctx.redis, RedisCluster):
            async for m in self._subscribe_cluster(channels):
                yield m
            return
        pubsub = self.ctx.redis.pubsub(ignore_subscribe_messages=True)
        try:
            try:
                await pubsub.subscribe(*channels)
            except (rexc.ConnectionError, OSError) as exc:
                raise Unavailable(f"Redis is unreachable: {exc}") from exc
            while True:
                try:
                    msg = await pubsub.get_message(timeout=1.0)
                except (rexc.ConnectionError, OSError) as exc:
                    raise Unavailable(f"lost the Redis subscription: {exc}") from exc
                if msg is None or msg.get("type") != "message":
                    continue
                payload, meta = codec.decode_channel_message(msg["data"])
                yield ChannelMessage(channel=msg["channel"], payload=payload, meta=meta)
        finally:
            with contextlib.suppress(Exception):  # closing a broken connection
                await pubsub.aclose()

    async def _subscribe_cluster(self, channels: Sequence[str]) -> AsyncIterator[ChannelMessage]:
        """Cluster: classic Pub/Sub is broadcast over the cluster bus, so PUBLISH on any node reaches
        a SUBSCRIBE on any other. The subscription is a plain connection to one node (master or
        replica); when that node dies, it subscribes again on the next reachable one (messages
        published in between are missed: channels are at-most-once). Unavailable when no node answers."""
        cluster = self.ctx.redis
        assert isinstance(cluster, RedisCluster)
        tried: set[str] = set()
        while True:
            with contextlib.suppress(*_DOWN, rexc.RedisError):
                await cluster.initialize()
            home = cluster.get_node_from_key(channels[0])  # where PUBLISH of that channel goes first
            nodes = sorted((n for n in cluster.get_nodes() if n.name not in tried), key=lambda n: n is not home)
            if not nodes:
                raise Unavailable(f"lost the Redis subscription: no cluster node accepts it (tried {', '.join(sorted(tried))})")
            node = nodes[0]
            kwargs = {k: v for k, v in node.connection_kwargs.items() if k in _REDIS_ARGS and k not in ("host", "port")}
            plain = aioredis.Redis(host=node.host, port=node.port, **kwargs)
            pubsub = plain.pubsub(ignore_subscribe_messages=True)
            try:
                try:
                    await pubsub.subscribe(*channels)
                except _DOWN:
                    tried.add(node.name)
                    continue
                tried.clear()
                log.debug("channels %s: subscribed on cluster node %s", ", ".join(channels), node.name)
                while True:
                    try:
                        msg = await pubsub.get_message(timeout=1.0)
                    except _DOWN as exc:
                        log.warning("lost the subscription on cluster node %s (%s): subscribing on another node", node.name, exc)
                        tried.add(node.name)
                        break
                    if msg is None or msg.get("type") != "message":
                        continue
                    payload, meta = codec.decode_channel_message(msg["data"])
                    yield ChannelMessage(channel=msg["channel"], payload=payload, meta=meta)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await plain.aclose()
