"""The event bus facade: the one object both transports (gRPC and HTTP) and the CLI call.

Delivery contract (at-least-once):

* ``publish`` returns once Redis has the entry (AOF makes it durable per its fsync policy);
  with FRIDAY_MIN_REPLICAS_ACK=N once N replicas have it too (else Unavailable: the entry may
  or may not exist, retry with the same event_id). See :mod:`.publishing` for each mode.
* Dead letters (nack, claim, sweep) are written with the original's ack in one script; with
  FRIDAY_MIN_REPLICAS_ACK a dead letter the replicas did not confirm in time is logged and
  counted, and the caller's answer is unchanged: if the master fails before it replicated,
  the original is pending again on the new master and is dead-lettered again (nothing lost).
* ``read`` hands an entry to one consumer of a group; the entry stays *pending* until ``ack``.
  A consumer that crashes or disconnects leaves its entries pending; after the stream's
  ``claim_idle_ms`` another ``read`` of the group reclaims them (delivery count raised).
* What counts as a delivery: the ``delivery_count`` consumers see, and that decides
  dead-lettering, counts the attempts that reached a consumer that could have handled them.
  A delivery given back with ``release`` (prefetched, never handed to the consumer's code) does
  not count: it is redelivered at once with its count as it was. A consumer that crashed while
  holding entries (nobody released them) costs them one delivery each.
* ``nack`` schedules a redelivery after the backoff; once an entry has been delivered
  ``max_deliveries`` times it is moved to the stream's dead-letter stream instead (written
  before the original is acked, in one atomic step).
* Nothing is ever acked on a consumer's behalf, except entries that were trimmed or deleted
  while pending: they no longer exist, so they are acked away and counted.

Every public method raises only :class:`~friday_bus.core.errors.FridayError` subclasses:
``InvalidArgument`` (bad input, nothing written), ``NotFound`` (unknown stream, group,
channel or entry), ``Conflict``, ``BacklogFull`` (hard cap reached, nothing written) and
``Unavailable`` (Redis unreachable; retry).

The facade holds no logic of its own beyond the connection and the error classification: it
hands each call to the role that does it, all sharing one
:class:`~friday_bus.core.context.BusContext`:

* :mod:`.publishing`: check, encode and write events;
* :mod:`.consuming`: read, claim, recover a vanished group, ack, extend, release, nack, peek, channels;
* :mod:`.admin`: setup, groups, rewind, dead letters, trim, sweep, idle consumers;
* :mod:`.status`: snapshots and alerts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar

from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster

from .admin import Admin
from .connection import RedisClient, RedisDescription, build_client, close_client, describe
from .consuming import Consuming
from .context import BusContext
from .errors import BacklogFull, ConfigError, FridayError, NotFound, Unavailable
from .keys import Keys
from .limits import DEFAULT_DLQ_LIST_COUNT, DEFAULT_READ_COUNT, MAX_ACK_IDS, MAX_BLOCK_MS
from .models import (
    BusStatus,
    ChannelMessage,
    DeadLetter,
    Delivery,
    NackResult,
    PublishRequest,
    PublishResult,
    ReplayResult,
    SetupReport,
    StreamInfo,
    StreamStatus,
    TrimReport,
)
from .observer import BusObserver
from .publishing import Publishing
from .replies import ReplyKind, reply_kind
from .settings import MIN_REDIS_VERSION, Settings, StreamConfig, Topology
from .status import Status

__all__ = ["BusObserver", "EventBus"]

log = logging.getLogger("friday.bus")

P = ParamSpec("P")
T = TypeVar("T")

RELEASE_DRAIN_S = 5.0
"""Longest :meth:`EventBus.close` waits for releases of reads nobody waited for (they end
within a read's block time, at most the claim interval for the doors' reads)."""


def _redis_errors(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Classify Redis client errors once, at the facade boundary."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except FridayError:
            raise
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            raise Unavailable(f"Redis is unreachable ({type(exc).__name__}); retry when it is back") from exc
        except rexc.ResponseError as exc:
            kind = reply_kind(exc)
            text = str(exc)
            if kind is ReplyKind.BACKLOG_FULL:
                _, stream, length, cap = (text.split() + ["?", "?", "?"])[:4]
                raise BacklogFull(
                    f"stream {stream} holds {length} entries, its hard cap is {cap}: consumers are behind. "
                    "Nothing was written; retry later, or raise max_backlog",
                    details={"stream": stream},
                ) from exc
            if kind.missing:
                raise NotFound(
                    "the stream or consumer group does not exist (deleted, or Redis restarted empty); "
                    "run `friday setup` or create the group", field="group",
                ) from exc
            if kind.transient:
                raise Unavailable(f"Redis cannot serve the request now: {kind.value}; retry later") from exc
            raise FridayError(f"Redis rejected the command: {text}") from exc
        except (rexc.ClusterError, rexc.RedisClusterException) as exc:
            # the cluster client gave up (TTL exhausted, still redirected, a slot not covered, no node
            # reachable): a shard is failing over or down - retriable, like an unreachable server
            raise Unavailable(f"the Redis cluster cannot serve the request now ({exc}); retry") from exc

    return wrapper


def _server_version(info: Any) -> str:
    """INFO server's version: Redis's ``redis_version`` (Valkey reports it too, as 7.2.4)."""
    return str(info.get("redis_version", "0")) if isinstance(info, dict) else "0"


def _flat_version(info: Any) -> dict[str, Any]:
    return {"redis_version": _server_version(info)}


def _parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split(".")[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


class EventBus:
    """Facade over Redis Streams and Pub/Sub for one topology."""

    def __init__(
        self,
        client: RedisClient,
        settings: Settings,
        topology: Topology,
        observer: BusObserver | None = None,
        blocking: RedisClient | None = None,
    ) -> None:
        """``client``: every command that answers at once; ``blocking``: blocking reads only
        (XREADGROUP / XREAD with BLOCK), built with ``block_ms=MAX_BLOCK_MS`` (core/connection.py).
        Without ``blocking`` the one client serves both (a BLOCK longer than its socket timeout
        would then be cut). The bus owns both: :meth:`close` closes them."""
        self._ctx = ctx = BusContext(client, settings, topology, observer or BusObserver(), blocking)
        self._releasing: set[asyncio.Task[None]] = set()
        self._publishing = Publishing(ctx)
        self._consuming = Consuming(ctx)
        self._admin = Admin(ctx)
        self._status = Status(ctx)

    # ------------------------------------------------------------------ shared state
    @property
    def redis(self) -> RedisClient:
        return self._ctx.redis

    @property
    def blocking_redis(self) -> RedisClient:
        """The client of blocking reads (the same as :attr:`redis` when none was given)."""
        return self._ctx.blocking

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    @property
    def topology(self) -> Topology:
        return self._ctx.topology

    @property
    def observer(self) -> BusObserver:
        return self._ctx.observer

    @property
    def keys(self) -> Keys:
        """The names of the Redis keys the bus adds besides the streams (dead letters, retries...)."""
        return self._ctx.keys

    @property
    def prefix(self) -> str:
        return self._ctx.keys.prefix

    @property
    def redis_version(self) -> str:
        """The server's version, known once :meth:`check_server` ran (else empty)."""
        return self._ctx.redis_version

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def from_url(cls, url: str | None, settings: Settings, topology: Topology, observer: BusObserver | None = None) -> EventBus:
        """A bus with its two clients built by :func:`~.connection.build_client` for
        ``settings.redis_mode`` (``url``: overrides FRIDAY_REDIS_URL; in sentinel mode only its
        credentials and TLS are used). Raises ConfigError."""
        client = build_client(settings, url)
        # Blocking reads wait up to MAX_BLOCK_MS on the server: their read timeout is the socket timeout
        # plus that (connection.socket_timeout_for), so a BLOCK is never cut and a frozen Redis still fails.
        blocking = build_client(settings, url, block_ms=MAX_BLOCK_MS)
        return cls(client, settings, topology, observer, blocking)

    async def describe(self) -> RedisDescription:
        """The mode, the nodes and the master(s) serving now, asked of Redis (never raises for a node down)."""
        return await describe(self.redis, self.settings)

    async def refresh_master(self) -> str | None:
        """Sentinel mode: move both clients' connections to the master the sentinels name now
        (:func:`~.connection.refresh_master`); None in the other modes."""
        return await self._ctx.refresh_master()

    async def check_server(self) -> str:
        """Check that Redis answers and is recent enough (on a cluster: every master; the lowest
        version is kept). Raises Unavailable or ConfigError."""
        try:
            if isinstance(self.redis, RedisCluster):
                infos = await self.redis.info("server", target_nodes=RedisCluster.PRIMARIES)
                versions = [_server_version(i) for i in infos.values()] if isinstance(infos, dict) and all(
                    isinstance(v, dict) for v in infos.values()) else [_server_version(infos)]
                info = {"redis_version": min(versions, key=_parse_version)}
            else:
                info = _flat_version(await self.redis.info("server"))
                await self._check_standalone_role()
        except (rexc.AuthenticationError, rexc.AuthenticationWrongNumberOfArgsError) as exc:
            raise ConfigError(f"Redis refused the credentials in FRIDAY_REDIS_URL ({exc}); fix the user/password in the URL") from exc
        except rexc.ResponseError as exc:
            if reply_kind(exc).auth:
                raise ConfigError("Redis requires a password: put it in FRIDAY_REDIS_URL, e.g. redis://:password@host:6379/0") from exc
            raise
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            raise Unavailable(f"cannot reach Redis: {exc}") from exc
        except rexc.RedisClusterException as exc:
            if "cluster mode is not enabled" in str(exc).lower():
                raise ConfigError(
                    "FRIDAY_REDIS_MODE=cluster but FRIDAY_REDIS_URL names a Redis that is not a cluster node "
                    "(cluster-enabled no); set FRIDAY_REDIS_MODE=standalone (or sentinel), or point the URL at a cluster node"
                ) from exc
            raise Unavailable(f"cannot reach the Redis cluster: {exc}") from exc
        version = str(info.get("redis_version", "0"))
        if _parse_version(version) < MIN_REDIS_VERSION:
            raise ConfigError(
                f"Redis {version} is too old: the Friday sidecar needs Redis >= 7.0 "
                "(XAUTOCLAIM deletion reporting, XINFO lag). Upgrade Redis."
            )
        self._ctx.redis_version = version
        return version

    async def _check_standalone_role(self) -> None:
        """Standalone / sentinel: refuse a cluster node (the first multi-key script would fail with a
        slot error) and, in standalone mode, a replica (read-only). Warn when fewer replicas are
        connected than FRIDAY_MIN_REPLICAS_ACK asks for (every publish would be refused)."""
        mode = self.settings.redis_mode
        cluster = await self.redis.info("cluster")
        if str(cluster.get("cluster_enabled", 0)) == "1":
            raise ConfigError(
                f"FRIDAY_REDIS_MODE={mode} but this Redis is a cluster node (cluster-enabled yes); "
                "set FRIDAY_REDIS_MODE=cluster (FRIDAY_REDIS_URL naming any node)"
            )
        replication = await self.redis.info("replication")
        if replication.get("role") == "slave":
            raise ConfigError(
                f"FRIDAY_REDIS_MODE={mode}: FRIDAY_REDIS_URL names a replica (of {replication.get('master_host')}:"
                f"{replication.get('master_port')}), which refuses writes; point it at the master, or use "
                "FRIDAY_REDIS_MODE=sentinel to follow failovers"
            )
        wanted = self.settings.min_replicas_ack
        connected = int(replication.get("connected_slaves", 0) or 0)
        if wanted > connected:
            log.warning(
                "FRIDAY_MIN_REPLICAS_ACK=%d but the master has %d replica(s) connected: every publish is refused "
                "(Unavailable) until %d are", wanted, connected, wanted,
            )

    async def close(self) -> None:
        """Close the Redis clients, once the releases still running (:meth:`release_when_read`)
        are done (at most RELEASE_DRAIN_S)."""
        await self.wait_released(RELEASE_DRAIN_S)
        blocking = self._ctx.blocking
        try:
            await close_client(self.redis)
        finally:
            if blocking is not self.redis:
                await close_client(blocking)

    @_redis_errors
    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    # ------------------------------------------------------------------ keys & lookups
    def dlq_key(self, stream: str) -> str:
        return self._ctx.keys.dlq(stream)

    @property
    def setup_key(self) -> str:
        return self._ctx.keys.setup

    def stream_config(self, stream: str) -> StreamConfig:
        """Configuration of a known stream. Raises InvalidArgument or NotFound."""
        return self._ctx.stream_config(stream)

    def stream_names(self) -> list[str]:
        return self._ctx.stream_names()

    def is_channel(self, name: str) -> bool:
        return self._ctx.is_channel(name)

    def channel_names(self) -> list[str]:
        """The informational channels of the topology, in topology order."""
        return self._ctx.channel_names()

    def check_channel(self, name: str) -> str:
        """The one check of a channel name, used by every door. Returns ``name``.
        Raises InvalidArgument (malformed name) or NotFound (not a channel of the topology)."""
        return self._ctx.check_channel(name)

    # ------------------------------------------------------------------ setup
    @_redis_errors
    async def setup(self, start: Literal["new", "all"] = "new") -> SetupReport:
        """Create every stream and group of the topology. Idempotent: existing groups are kept as they are.

        ``start`` chooses where a *new* group begins: ``new`` (only events published from now
        on, the seed's ``$``) or ``all`` (the stream's whole history).
        """
        return await self._admin.setup(start)

    @_redis_errors
    async def is_setup(self) -> bool:
        return await self._admin.is_setup()

    # ------------------------------------------------------------------ publish
    @_redis_errors
    async def publish(self, req: PublishRequest) -> PublishResult:
        """Publish one event to a critical stream (Redis Streams) or an informational channel (Pub/Sub).

        Stream events are durable once this returns (on the master; with
        FRIDAY_MIN_REPLICAS_ACK=N also on N replicas, else Unavailable saying the entry may or
        may not exist); channel events reach only the current subscribers (``receivers``).
        With ``event_id`` set, a repeat within the idempotency window returns the first entry
        id with ``duplicate=True`` and writes nothing: retrying an Unavailable publish with the
        same event_id is always safe. Raises InvalidArgument, NotFound (unknown stream),
        BacklogFull, Unavailable.
        """
        return await self._publishing.publish(req)

    @_redis_errors
    async def publish_batch(self, reqs: Sequence[PublishRequest]) -> list[PublishResult]:
        """Publish several events in one Redis round trip; results keep the order of ``reqs``.

        Every event is validated first: one invalid event rejects the batch and nothing is
        written. Stream events: standalone and sentinel write them in one atomic script call
        (all or none, hard caps checked first). On a cluster a batch whose streams fall in
        different hash slots is split by slot: one atomic call per slot group (so always atomic
        per stream), in order of first appearance; capped streams are checked before the first
        call and again, atomically, in each. If a later call fails (BacklogFull, Unavailable),
        the events of the earlier calls stay written: retrying the batch with the same event_ids
        writes nothing twice. With FRIDAY_MIN_REPLICAS_ACK each call waits for its replicas
        (see :meth:`publish`). Channel events are published after the stream events.
        Raises like :meth:`publish`.
        """
        return await self._publishing.publish_batch(reqs)

    # ------------------------------------------------------------------ consume
    @_redis_errors
    async def read(
        self, stream: str, group: str, consumer: str, count: int = DEFAULT_READ_COUNT, block_ms: int = 0
    ) -> list[Delivery]:
        """Read up to ``count`` deliveries as ``consumer`` of ``group``, waiting up to ``block_ms``.

        Returns, in this order of preference: nacked entries whose backoff elapsed, entries
        idle longer than ``claim_idle_ms`` in another consumer (both with their delivery
        count raised), then new entries (delivery count 1). Each returned entry stays
        pending until :meth:`ack` or :meth:`nack`; nothing is acked here. Entries that
        reached ``max_deliveries`` without an ack are dead-lettered instead of returned.
        If the stream or group vanished (NOGROUP), a topology group is recreated and logged.
        Raises InvalidArgument, NotFound (unknown stream or group), Unavailable.
        """
        return await self._consuming.read(stream, group, consumer, count, block_ms)

    @_redis_errors
    async def ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> int:
        """Acknowledge entries: they are done and will not be delivered again to this group.

        Returns how many were pending (acking an id that is not pending counts 0, no error).
        Raises InvalidArgument (bad id), NotFound (unknown stream or group), Unavailable.
        """
        return await self._consuming.ack(stream, group, entry_ids)

    @_redis_errors
    async def extend(self, stream: str, group: str, consumer: str, entry_ids: Sequence[str]) -> int:
        """Mark deliveries as still in progress: their idle time restarts, so they are not
        reclaimed by another consumer while a long job runs (call it well within ``claim_idle_ms``).

        Only entries still pending for ``consumer`` are extended; the delivery count is unchanged.
        Returns how many were extended (0 for ids acked, or already reclaimed by another consumer).
        Raises InvalidArgument, NotFound (unknown stream or group), Unavailable.
        """
        return await self._consuming.extend(stream, group, consumer, entry_ids)

    @_redis_errors
    async def release(
        self, stream: str, group: str, consumer: str, deliveries: Sequence[tuple[str, int] | Delivery]
    ) -> int:
        """Give back deliveries ``consumer`` never handed to its code: they are redelivered at once,
        with their delivery count as it was.

        ``deliveries`` are ``(entry_id, delivery_count)`` pairs, or :class:`Delivery` objects, as
        :meth:`read` handed them to ``consumer``. Each entry still pending for ``consumer`` with
        that delivery count gets its count lowered by one and becomes claimable at once: the next
        read of the group, by any consumer (this sidecar's next read claims at once), gets it with
        the same ``delivery_count`` again. So a released delivery does not count toward
        ``max_deliveries``. A delivery that is never released (its consumer crashed with it) is
        reclaimed after ``claim_idle_ms`` with its count raised: it counts.

        Entries no longer pending for ``consumer`` with that count are skipped, not an error: acked,
        reclaimed by another consumer, delivered again since (their count moved on), or nacked
        (waiting for their retry). So a late or repeated release is harmless. Nothing is acked.
        Returns how many were released.

        Like :meth:`ack`: 1 to MAX_ACK_IDS deliveries. Raises InvalidArgument (bad consumer name,
        entry id or delivery count; none or too many), NotFound (unknown stream or group), Unavailable.
        """
        return await self._consuming.release(stream, group, consumer, deliveries)

    def release_when_read(
        self, stream: str, group: str, consumer: str, reading: asyncio.Future[list[Delivery]]
    ) -> asyncio.Task[None]:
        """A :meth:`read` of ``consumer`` that nobody waits for any more (its client left, the
        sidecar shuts down): let it finish instead of cancelling it - Redis may be answering, and
        the entries of a cancelled answer would stay pending, to be reclaimed with their count
        raised - then :meth:`release` whatever it took (nobody received it). Runs in the
        background (returned task); :meth:`close` waits for it. Failures are logged (those
        entries are then reclaimed after claim_idle_ms)."""

        async def run() -> None:
            try:
                deliveries = await reading
            except Exception:  # noqa: BLE001 - a read that failed took nothing
                return
            for i in range(0, len(deliveries), MAX_ACK_IDS):
                chunk = deliveries[i:i + MAX_ACK_IDS]
                try:
                    await self.release(stream, group, consumer, chunk)
                except FridayError as exc:
                    log.warning("stream %s group %s: could not give back %d deliveries nobody received (%s); "
                                "they are reclaimed after the claim idle time", stream, group, len(chunk), exc)

        task = asyncio.create_task(run(), name=f"friday-release-{stream}")
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        return task

    async def wait_released(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) for the releases :meth:`release_when_read` started."""
        if self._releasing:
            await asyncio.wait(list(self._releasing), timeout=timeout)

    @_redis_errors
    async def nack(self, stream: str, group: str, entry_id: str, reason: str) -> NackResult:
        """Reject a delivery: it is redelivered after the stream's backoff, or dead-lettered
        with ``reason`` once it has been delivered ``max_deliveries`` times.

        The entry stays pending meanwhile (a crash loses nothing). Raises InvalidArgument,
        NotFound (unknown stream/group, or the entry is not pending: already acked or never
        delivered), Unavailable.
        """
        return await self._consuming.nack(stream, group, entry_id, reason)

    @_redis_errors
    async def peek_next(self, stream: str, block_ms: int = 0) -> Delivery | None:
        """Wait up to ``block_ms`` for the next event published to ``stream`` and return it
        without touching any consumer group (nothing becomes pending, nothing is acked).
        Used for "listen for a test event". Raises InvalidArgument, NotFound, Unavailable.
        """
        return await self._consuming.peek_next(stream, block_ms)

    # ------------------------------------------------------------------ channels
    def subscribe(self, channels: Sequence[str]) -> AsyncIterator[ChannelMessage]:
        """Yield messages published on informational channels from now on (at-most-once:
        Pub/Sub keeps nothing for absent subscribers). Raises NotFound, Unavailable."""
        return self._consuming.subscribe(channels)

    # ------------------------------------------------------------------ groups & replay
    @_redis_errors
    async def create_group(self, stream: str, group: str, start: str = "new") -> bool:
        """Create a consumer group at ``new`` (``$``), ``all`` (``0``) or after an entry id.
        Returns False if it already existed (left unchanged). With FRIDAY_MIN_REPLICAS_ACK=N > 0
        the creation waits for N replicas, as a publish does; not confirmed in time: Unavailable
        (the group is on the master; creating it again returns False). Raises InvalidArgument,
        NotFound, Unavailable."""
        return await self._admin.create_group(stream, group, start)

    @_redis_errors
    async def destroy_group(self, stream: str, group: str, force: bool = False) -> int:
        """Destroy a consumer group and its retry schedule. Returns the pending entries it held.

        Refuses (Conflict) when the group still holds pending entries, unless ``force``:
        those entries would never be processed by it. Raises NotFound if it does not exist.
        """
        return await self._admin.destroy_group(stream, group, force)

    @_redis_errors
    async def rewind(self, stream: str, group: str, to_id: str | None = None, to_time_ms: int | None = None) -> str:
        """Move a group's last-delivered id back (or forward) so entries after it are delivered again.

        Give ``to_id`` (entries after it are redelivered) or ``to_time_ms`` (entries published
        at or after that time are redelivered). Pending entries are untouched. Returns the id
        set. A target beyond both the stream's last entry (or the group's current position)
        and now is refused (InvalidArgument): the group would skip every event published
        until then. Raises InvalidArgument, NotFound.
        """
        return await self._admin.rewind(stream, group, to_id, to_time_ms)

    @_redis_errors
    async def dlq_list(self, stream: str, count: int = DEFAULT_DLQ_LIST_COUNT, after: str | None = None) -> list[DeadLetter]:
        """List dead letters of a stream, oldest first (``after``: exclusive start id)."""
        return await self._admin.dlq_list(stream, count, after)

    @_redis_errors
    async def dlq_replay(self, stream: str, ids: Sequence[str] | Literal["all"]) -> list[ReplayResult]:
        """Publish dead letters again into their stream (as new entries, seen by every group of
        the stream) and remove them from the dead-letter stream, each atomically.

        ``ids`` names the dead letters to replay, or is the word ``"all"`` for every one: an
        empty list is refused, so a forgotten argument never replays everything.
        Raises InvalidArgument (no ids, bad id), NotFound (a given id is not a dead letter).
        """
        return await self._admin.dlq_replay(stream, ids)

    # ------------------------------------------------------------------ maintenance
    async def safe_boundary(self, stream: str) -> str:
        """The id before which every group has acknowledged every entry."""
        return await self._admin.safe_boundary(stream)

    @_redis_errors
    async def trim(self, stream: str) -> TrimReport:
        """Trim a stream to its retention bound, removing only entries every group has acked.

        Unacknowledged entries are never removed, even beyond the bound: they are reported
        in ``kept_unacked`` (and raise the backlog alert in :meth:`status`).
        """
        return await self._admin.trim(stream)

    @_redis_errors
    async def sweep_dead(self, stream: str) -> int:
        """Dead-letter entries that reached ``max_deliveries`` and sat idle past the claim time,
        for every group of the stream, even when no consumer reads any more. Returns the count."""
        return await self._admin.sweep_dead(stream)

    @_redis_errors
    async def remove_idle_consumers(self, stream: str, max_idle_ms: int) -> list[tuple[str, str]]:
        """Delete consumers idle longer than ``max_idle_ms`` that hold no pending entry.
        A consumer holding pending entries is never deleted (checked atomically)."""
        return await self._admin.remove_idle_consumers(stream, max_idle_ms)

    # ------------------------------------------------------------------ status
    @_redis_errors
    async def stream_status(self, stream: str) -> StreamStatus:
        """Snapshot of one stream: length, ends, dead letters, groups, consumers and alerts."""
        return await self._status.stream_status(stream)

    @_redis_errors
    async def status(self, streams: Sequence[str] | None = None) -> BusStatus:
        """Snapshot of every stream of the topology (or the named ones), with alerts."""
        return await self._status.status(streams)

    @_redis_errors
    async def list_streams(self) -> list[StreamInfo]:
        """The topology's streams with their groups (also those created at run time) and retention."""
        return await self._admin.list_streams()

    @_redis_errors
    async def list_groups(self, stream: str | None = None) -> list[tuple[str, str]]:
        """(stream, group) pairs: the topology's plus any created at run time."""
        return await self._admin.list_groups(stream)
