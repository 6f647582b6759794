"""The event bus facade: the one object both transports (gRPC and HTTP) and the CLI call.

Delivery contract (at-least-once):

* ``publish`` returns once Redis has the entry (AOF makes it durable per its fsync policy).
* ``read`` hands an entry to one consumer of a group; the entry stays *pending* until ``ack``.
  A consumer that crashes or disconnects leaves its entries pending; after the stream's
  ``claim_idle_ms`` another ``read`` of the group reclaims them (delivery count raised).
* ``nack`` schedules a redelivery after the backoff; once an entry has been delivered
  ``max_deliveries`` times it is moved to the stream's dead-letter stream instead (written
  before the original is acked, in one atomic step).
* Nothing is ever acked on a consumer's behalf, except entries that were trimmed or deleted
  while pending: they no longer exist, so they are acked away and counted.

Every public method raises only :class:`~friday_bus.core.errors.FridayError` subclasses:
``InvalidArgument`` (bad input, nothing written), ``NotFound`` (unknown stream, group,
channel or entry), ``Conflict``, ``BacklogFull`` (hard cap reached, nothing written) and
``Unavailable`` (Redis unreachable; retry).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as rexc

from . import codec, names, scripts
from .errors import BacklogFull, ConfigError, Conflict, FridayError, InvalidArgument, NotFound, Unavailable
from .models import (
    Alert,
    BusStatus,
    ChannelMessage,
    ConsumerStatus,
    DeadLetter,
    Delivery,
    EventMeta,
    GroupStatus,
    NackResult,
    PublishRequest,
    PublishResult,
    ReplayResult,
    SetupReport,
    StreamInfo,
    StreamStatus,
    TrimReport,
)
from .settings import MIN_REDIS_VERSION, Settings, StreamConfig, Topology

log = logging.getLogger("friday.bus")

MAX_READ_COUNT = 1000
MAX_BLOCK_MS = 30_000
MAX_BATCH = 1000
MAX_PAYLOAD_KEYS = 2000
MAX_REASON_LENGTH = 4096
MAX_REDIS_CONNECTIONS = 10_000
TRIM_CHUNK = 10_000
LAG_COUNT_CAP = 1_000_000
_TOP = f"{names.U64_MAX}-{names.U64_MAX}"

P = ParamSpec("P")
T = TypeVar("T")


def _now_ms() -> int:
    return int(time.time() * 1000)


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
            text = str(exc)
            if text.startswith("BACKLOG_FULL"):
                _, stream, length, cap = (text.split() + ["?", "?", "?"])[:4]
                raise BacklogFull(
                    f"stream {stream} holds {length} entries, its hard cap is {cap}: consumers are behind. "
                    "Nothing was written; retry later, or raise max_backlog",
                    details={"stream": stream},
                ) from exc
            if "NOGROUP" in text or "requires the key to exist" in text:
                raise NotFound(
                    "the stream or consumer group does not exist (deleted, or Redis restarted empty); "
                    "run `friday setup` or create the group", field="group",
                ) from exc
            if text.startswith(("LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN", "OOM")):
                raise Unavailable(f"Redis cannot serve the request now: {text.split(' ', 1)[0]}; retry later") from exc
            raise FridayError(f"Redis rejected the command: {text}") from exc

    return wrapper


class BusObserver:
    """Hooks for metrics. The default does nothing; the transports plug in Prometheus."""

    def published(self, target: str, kind: str, seconds: float, duplicate: bool) -> None: ...
    def delivered(self, stream: str, group: str, n: int) -> None: ...
    def acked(self, stream: str, group: str, n: int) -> None: ...
    def nacked(self, stream: str, group: str) -> None: ...
    def dead_lettered(self, stream: str, group: str, n: int) -> None: ...
    def reclaimed(self, stream: str, group: str, n: int) -> None: ...
    def gone(self, stream: str, group: str, n: int) -> None: ...


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
        client: aioredis.Redis,
        settings: Settings,
        topology: Topology,
        observer: BusObserver | None = None,
    ) -> None:
        self.redis = client
        self.settings = settings
        self.topology = topology
        self.observer = observer or BusObserver()
        self.prefix = settings.key_prefix
        self.redis_version = ""
        self._scripts = {
            name: client.register_script(getattr(scripts, name))
            for name in ("PUBLISH", "CLAIM", "NACK", "SWEEP", "SAFE_TRIM", "DELETE_IDLE_CONSUMER", "REPLAY", "COUNT_AFTER", "EXTEND")
        }
        self._last_claim: dict[tuple[str, str], float] = {}
        self._next_due: dict[tuple[str, str], float] = {}
        self._nogroup_at: dict[tuple[str, str], float] = {}
        self._known_groups: dict[str, tuple[float, set[str]]] = {}

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def from_url(cls, url: str, settings: Settings, topology: Topology, observer: BusObserver | None = None) -> EventBus:
        options: dict[str, Any] = {
            "decode_responses": True, "encoding_errors": "replace", "health_check_interval": 30,
            # Every waiting read (a gRPC subscriber, an HTTP long poll) holds a connection while it
            # blocks; redis-py's default pool of 100 would make the 101st caller fail as "unreachable".
            "max_connections": MAX_REDIS_CONNECTIONS,
        }
        if not url.startswith("unix://"):
            options["socket_keepalive"] = True
        client = aioredis.Redis.from_url(url, **options)
        return cls(client, settings, topology, observer)

    async def check_server(self) -> str:
        """Check that Redis answers and is recent enough. Raises Unavailable or ConfigError."""
        try:
            info = await self.redis.info("server")
        except (rexc.AuthenticationError, rexc.AuthenticationWrongNumberOfArgsError) as exc:
            raise ConfigError(f"Redis refused the credentials in FRIDAY_REDIS_URL ({exc}); fix the user/password in the URL") from exc
        except rexc.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise ConfigError("Redis requires a password: put it in FRIDAY_REDIS_URL, e.g. redis://:password@host:6379/0") from exc
            raise
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            raise Unavailable(f"cannot reach Redis: {exc}") from exc
        version = str(info.get("redis_version", "0"))
        if _parse_version(version) < MIN_REDIS_VERSION:
            raise ConfigError(
                f"Redis {version} is too old: the Friday sidecar needs Redis >= 7.0 "
                "(XAUTOCLAIM deletion reporting, XINFO lag). Upgrade Redis."
            )
        self.redis_version = version
        return version

    async def close(self) -> None:
        await self.redis.aclose()

    @_redis_errors
    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    # ------------------------------------------------------------------ keys & lookups
    def dlq_key(self, stream: str) -> str:
        return f"{self.prefix}dlq:{stream}"

    def _retry_key(self, stream: str, group: str) -> str:
        return f"{self.prefix}retry:{stream}:{group}"

    def _reasons_key(self, stream: str, group: str) -> str:
        return f"{self.prefix}reasons:{stream}:{group}"

    def _idem_key(self, stream: str, event_id: str) -> str:
        return f"{self.prefix}idem:{stream}:{event_id}"

    @property
    def setup_key(self) -> str:
        return f"{self.prefix}setup"

    def stream_config(self, stream: str) -> StreamConfig:
        """Configuration of a known stream. Raises InvalidArgument or NotFound."""
        names.check_stream(stream)
        cfg = self.topology.stream(stream)
        if cfg is not None:
            return cfg
        if stream in self.topology.channels:
            raise InvalidArgument(f"{stream!r} is an informational channel, not a stream; it has no consumer groups", field="stream")
        if self.topology.allow_unknown_streams:
            return self.topology.config_for(stream)
        raise NotFound(
            f"unknown stream {stream!r}; known streams: {', '.join(self.topology.streams)}. "
            "Declare it in the topology file, or set FRIDAY_ALLOW_UNKNOWN_STREAMS=true",
            field="stream",
        )

    def is_channel(self, name: str) -> bool:
        return name in self.topology.channels

    def channel_names(self) -> list[str]:
        """The informational channels of the topology, in topology order."""
        return list(self.topology.channels)

    def check_channel(self, name: str) -> str:
        """The one check of a channel name, used by every door. Returns ``name``.
        Raises InvalidArgument (malformed name) or NotFound (not a channel of the topology)."""
        names.check_channel(name)
        if name not in self.topology.channels:
            hint = " It is a critical stream: publish it as an event, not as an informational message." if (
                name in self.topology.streams) else ""
            raise NotFound(
                f"unknown channel {name!r}; known channels: {', '.join(self.topology.channels) or 'none'}.{hint}",
                field="channel",
            )
        return name

    async def _existing_groups(self, stream: str, refresh: bool = False) -> set[str]:
        cached = self._known_groups.get(stream)
        if cached and not refresh and time.monotonic() - cached[0] < 5.0:
            return cached[1]
        try:
            groups = {g["name"] for g in await self.redis.xinfo_groups(stream)}
        except rexc.ResponseError:
            groups = set()
        self._known_groups[stream] = (time.monotonic(), groups)
        return groups

    async def _check_group(self, stream: str, group: str) -> StreamConfig:
        cfg = self.stream_config(stream)
        names.check_group(group)
        if group in cfg.groups:
            return cfg
        if group in await self._existing_groups(stream) or group in await self._existing_groups(stream, refresh=True):
            return cfg
        raise NotFound(
            f"group {group!r} does not exist on stream {stream!r}; create it (friday group create / "
            f"POST /api/v1/streams/{stream}/groups) or declare it in the topology",
            field="group",
        )

    # ------------------------------------------------------------------ setup
    @_redis_errors
    async def setup(self, start: Literal["new", "all"] = "new") -> SetupReport:
        """Create every stream and group of the topology. Idempotent: existing groups are kept as they are.

        ``start`` chooses where a *new* group begins: ``new`` (only events published from now
        on, the seed's ``$``) or ``all`` (the stream's whole history).
        """
        report = SetupReport()
        for cfg in self.topology.streams.values():
            existed = bool(await self.redis.exists(cfg.name))
            for group in cfg.groups:
                if await self._create_group(cfg.name, group, "$" if start == "new" else "0"):
                    report.created_groups.append((cfg.name, group))
                else:
                    report.existing_groups.append((cfg.name, group))
            if not existed:
                if not cfg.groups:
                    # a stream needs an entry or a group to exist; make it exist empty
                    await self.redis.xgroup_create(cfg.name, "friday-setup", "$", mkstream=True)
                    await self.redis.xgroup_destroy(cfg.name, "friday-setup")
                report.created_streams.append(cfg.name)
        await self.redis.hset(self.setup_key, mapping={"at_ms": _now_ms(), "streams": len(self.topology.streams)})
        return report

    async def _create_group(self, stream: str, group: str, start_id: str) -> bool:
        try:
            await self.redis.xgroup_create(stream, group, start_id, mkstream=True)
        except rexc.ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        self._known_groups.pop(stream, None)
        return True

    @_redis_errors
    async def is_setup(self) -> bool:
        return bool(await self.redis.exists(self.setup_key))

    # ------------------------------------------------------------------ publish
    def _meta(self, req: PublishRequest) -> EventMeta:
        codec.validate_meta_value("event_id", req.event_id)
        codec.validate_meta_value("source", req.source)
        codec.validate_meta_value("correlation_id", req.correlation_id)
        return EventMeta(event_id=req.event_id, source=req.source, correlation_id=req.correlation_id)

    def _validate(
        self, req: PublishRequest, now: int
    ) -> tuple[Literal["stream", "channel"], EventMeta, StreamConfig | None, dict[str, str] | None]:
        """Check one event; for a stream, also encode it (the size limit applies to the encoded form)."""
        if not isinstance(req.target, str) or not req.target:
            raise InvalidArgument("stream is required: name a critical stream or an informational channel", field="stream")
        codec.check_payload_shape(req.payload)
        if len(req.payload) > MAX_PAYLOAD_KEYS:
            raise InvalidArgument(f"payload has {len(req.payload)} keys; the limit is {MAX_PAYLOAD_KEYS}: nest them", field="payload")
        meta = self._meta(req)
        if self.is_channel(req.target):
            codec.validate_payload(req.payload, self.settings.max_payload_bytes)
            return "channel", meta, None, None
        cfg = self.stream_config(req.target)
        fields = codec.encode_event(req.payload, meta, now)
        codec.check_size(fields, self.settings.max_payload_bytes)
        return "stream", meta, cfg, fields

    @_redis_errors
    async def publish(self, req: PublishRequest) -> PublishResult:
        """Publish one event to a critical stream (Redis Streams) or an informational channel (Pub/Sub).

        Stream events are durable once this returns; channel events reach only the current
        subscribers (``receivers``). With ``event_id`` set, a repeat within the idempotency
        window returns the first entry id with ``duplicate=True`` and writes nothing.
        Raises InvalidArgument, NotFound (unknown stream), BacklogFull, Unavailable.
        """
        return (await self.publish_batch([req]))[0]

    @_redis_errors
    async def publish_batch(self, reqs: Sequence[PublishRequest]) -> list[PublishResult]:
        """Publish several events in one Redis round trip; results keep the order of ``reqs``.

        Every event is validated first: one invalid event rejects the batch and nothing is
        written. Stream events are written atomically together (all or none, hard caps
        checked first); channel events are published after them.
        Raises like :meth:`publish`.
        """
        if not reqs:
            raise InvalidArgument("events must hold at least one event", field="events")
        if len(reqs) > MAX_BATCH:
            raise InvalidArgument(f"a batch holds at most {MAX_BATCH} events (got {len(reqs)}); split it", field="events")
        started = time.perf_counter()
        now = _now_ms()
        checked = []
        for i, req in enumerate(reqs):
            try:
                checked.append(self._validate(req, now))
            except FridayError as exc:
                if len(reqs) > 1:
                    exc.message = f"events[{i}]: {exc.message}"
                    exc.args = (exc.message,)
                raise
        results: list[PublishResult | None] = [None] * len(reqs)
        stream_idx = [i for i, c in enumerate(checked) if c[0] == "stream"]
        if stream_idx:
            await self._write_streams(reqs, checked, stream_idx, results)
        for i, (kind, meta, _, _) in enumerate(checked):
            if kind == "channel":
                data = codec.encode_channel_message(reqs[i].payload, meta, now)
                receivers = await self.redis.publish(reqs[i].target, data)
                results[i] = PublishResult(target=reqs[i].target, kind="channel", entry_id=None, receivers=int(receivers))
        elapsed = time.perf_counter() - started
        out = [r for r in results if r is not None]
        for r in out:
            self.observer.published(r.target, r.kind, elapsed / len(out), r.duplicate)
        return out

    async def _write_streams(
        self,
        reqs: Sequence[PublishRequest],
        checked: list[tuple[Literal["stream", "channel"], EventMeta, StreamConfig | None, dict[str, str] | None]],
        idx: list[int],
        results: list[PublishResult | None],
    ) -> None:
        """One event without idempotency key or cap: a plain XADD. Anything else: one PUBLISH
        script call, atomic for the whole batch (caps checked before anything is written)."""
        encoded = {i: checked[i][3] for i in idx}
        if len(idx) == 1:
            i = idx[0]
            cfg = checked[i][2]
            if reqs[i].event_id is None and cfg is not None and cfg.max_backlog is None:
                entry_id = await self.redis.xadd(reqs[i].target, encoded[i])  # type: ignore[arg-type]
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
            req, cfg = reqs[i], checked[i][2]
            assert cfg is not None
            flat: list[str] = []
            for k, v in encoded[i].items():  # type: ignore[union-attr]
                flat.append(k)
                flat.append(v)
            args += [
                pos(req.target),
                pos(self._idem_key(req.target, req.event_id)) if req.event_id else 0,
                self.settings.idempotency_window_s,
                cfg.max_backlog or 0,
                len(flat),
                *flat,
            ]
        replies = await self._scripts["PUBLISH"](keys=keys, args=args)
        for i, (entry_id, dup) in zip(idx, replies):
            results[i] = PublishResult(target=reqs[i].target, kind="stream", entry_id=entry_id, duplicate=bool(int(dup)))

    # ------------------------------------------------------------------ consume
    def _validate_read(self, count: int, block_ms: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_READ_COUNT:
            raise InvalidArgument(f"count must be between 1 and {MAX_READ_COUNT} (got {count!r})", field="count")
        if isinstance(block_ms, bool) or not isinstance(block_ms, int) or not 0 <= block_ms <= MAX_BLOCK_MS:
            raise InvalidArgument(f"block_ms must be between 0 and {MAX_BLOCK_MS} (got {block_ms!r})", field="block_ms")

    def _delivery(self, stream: str, group: str, consumer: str, entry_id: str, fields: Any, count: int) -> Delivery:
        if isinstance(fields, list):  # raw Lua reply: flat [k, v, k, v, ...]
            fields = dict(zip(fields[0::2], fields[1::2]))
        payload, meta = codec.decode_event(entry_id, fields or {})
        return Delivery(stream, group, consumer, entry_id, payload, meta, int(count))

    @_redis_errors
    async def read(self, stream: str, group: str, consumer: str, count: int = 10, block_ms: int = 0) -> list[Delivery]:
        """Read up to ``count`` deliveries as ``consumer`` of ``group``, waiting up to ``block_ms``.

        Returns, in this order of preference: nacked entries whose backoff elapsed, entries
        idle longer than ``claim_idle_ms`` in another consumer (both with their delivery
        count raised), then new entries (delivery count 1). Each returned entry stays
        pending until :meth:`ack` or :meth:`nack`; nothing is acked here. Entries that
        reached ``max_deliveries`` without an ack are dead-lettered instead of returned.
        If the stream or group vanished (NOGROUP), a topology group is recreated and logged.
        Raises InvalidArgument, NotFound (unknown stream or group), Unavailable.
        """
        names.check_consumer(consumer)
        self._validate_read(count, block_ms)
        cfg = await self._check_group(stream, group)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        key = (stream, group)
        interval = self.settings.claim_interval_ms / 1000
        while True:
            now = loop.time()
            if now - self._last_claim.get(key, 0.0) >= interval or self._next_due.get(key, float("inf")) <= now:
                claimed = await self._claim(cfg, group, consumer, count)
                if claimed:
                    return claimed
            remaining = deadline - loop.time()
            wait = min(remaining, interval, max(0.0, self._next_due.get(key, float("inf")) - loop.time()))
            try:
                reply = await self.redis.xreadgroup(
                    group, consumer, {stream: ">"}, count=count, block=max(1, int(wait * 1000)) if wait > 0 else None
                )
            except rexc.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._recover_nogroup(cfg, group)
                if deadline - loop.time() <= 0:
                    return []
                continue
            if reply:
                entries = reply[0][1]
                out = [self._delivery(stream, group, consumer, eid, fields, 1) for eid, fields in entries if fields is not None]
                self.observer.delivered(stream, group, len(out))
                return out
            if deadline - loop.time() <= 0:
                return []

    async def _claim(self, cfg: StreamConfig, group: str, consumer: str, count: int) -> list[Delivery]:
        stream = cfg.name
        loop = asyncio.get_running_loop()
        self._last_claim[(stream, group)] = loop.time()
        self._next_due.pop((stream, group), None)
        try:
            reply = await self._scripts["CLAIM"](
                keys=[stream, self._retry_key(stream, group), self._reasons_key(stream, group), self.dlq_key(stream)],
                args=[group, consumer, _now_ms(), count, cfg.claim_idle_ms, cfg.max_deliveries, min(1000, count * 4 + 16)],
            )
        except rexc.ResponseError as exc:
            if "NOGROUP" in str(exc):
                await self._recover_nogroup(cfg, group)
                return []
            raise
        entries, gone, dead, reclaimed, _retried = reply
        if gone:
            log.warning("stream %s group %s: %d pending entries were trimmed or deleted before their ack; acked away", stream, group, gone)
            self.observer.gone(stream, group, int(gone))
        if dead:
            log.warning("stream %s group %s: %d entries dead-lettered after %d deliveries", stream, group, dead, cfg.max_deliveries)
            self.observer.dead_lettered(stream, group, int(dead))
        if reclaimed:
            self.observer.reclaimed(stream, group, int(reclaimed))
        if len(entries) >= count:
            self._last_claim[(stream, group)] = 0.0  # more may be waiting
        out = [self._delivery(stream, group, consumer, e[0], e[1], e[2]) for e in entries]
        if out:
            self.observer.delivered(stream, group, len(out))
        return out

    async def _recover_nogroup(self, cfg: StreamConfig, group: str) -> None:
        """The stream or the group vanished (e.g. Redis restarted empty): recreate a topology group once."""
        stream = cfg.name
        key = (stream, group)
        if group not in cfg.groups:
            self._known_groups.pop(stream, None)
            raise NotFound(f"group {group!r} no longer exists on stream {stream!r}", field="group")
        last = self._nogroup_at.get(key, 0.0)
        now = time.monotonic()
        if now - last < 1.0:
            await asyncio.sleep(1.0 - (now - last))  # never a hot loop, whatever deletes the stream
        self._nogroup_at[key] = time.monotonic()
        exists = bool(await self.redis.exists(stream))
        start = "$" if exists else "0"
        created = await self._create_group(stream, group, start)
        if created:
            if exists:
                log.error(
                    "group %s was missing on existing stream %s: recreated at the end ($). Entries published before "
                    "now are not delivered to it; rewind with `friday replay` if they must be",
                    group, stream,
                )
            else:
                log.warning("stream %s vanished (Redis restarted empty?): recreated it with group %s", stream, group)

    @_redis_errors
    async def ack(self, stream: str, group: str, entry_ids: Sequence[str]) -> int:
        """Acknowledge entries: they are done and will not be delivered again to this group.

        Returns how many were pending (acking an id that is not pending counts 0, no error).
        Raises InvalidArgument (bad id), NotFound (unknown stream or group), Unavailable.
        """
        if not entry_ids:
            raise InvalidArgument("ids must hold at least one entry id", field="ids")
        if len(entry_ids) > MAX_READ_COUNT:
            raise InvalidArgument(f"ack at most {MAX_READ_COUNT} ids at a time", field="ids")
        for eid in entry_ids:
            names.check_entry_id(eid, "ids")
        await self._check_group(stream, group)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xack(stream, group, *entry_ids)
            pipe.zrem(self._retry_key(stream, group), *entry_ids)
            pipe.hdel(self._reasons_key(stream, group), *entry_ids)
            acked, _, _ = await pipe.execute()
        self.observer.acked(stream, group, int(acked))
        return int(acked)

    @_redis_errors
    async def extend(self, stream: str, group: str, consumer: str, entry_ids: Sequence[str]) -> int:
        """Mark deliveries as still in progress: their idle time restarts, so they are not
        reclaimed by another consumer while a long job runs (call it well within ``claim_idle_ms``).

        Only entries still pending for ``consumer`` are extended; the delivery count is unchanged.
        Returns how many were extended (0 for ids acked, or already reclaimed by another consumer).
        Raises InvalidArgument, NotFound (unknown stream or group), Unavailable.
        """
        names.check_consumer(consumer)
        if not entry_ids:
            raise InvalidArgument("ids must hold at least one entry id", field="ids")
        if len(entry_ids) > MAX_READ_COUNT:
            raise InvalidArgument(f"extend at most {MAX_READ_COUNT} ids at a time", field="ids")
        for eid in entry_ids:
            names.check_entry_id(eid, "ids")
        await self._check_group(stream, group)
        return int(await self._scripts["EXTEND"](keys=[stream], args=[group, consumer, *entry_ids]))

    @_redis_errors
    async def nack(self, stream: str, group: str, entry_id: str, reason: str) -> NackResult:
        """Reject a delivery: it is redelivered after the stream's backoff, or dead-lettered
        with ``reason`` once it has been delivered ``max_deliveries`` times.

        The entry stays pending meanwhile (a crash loses nothing). Raises InvalidArgument,
        NotFound (unknown stream/group, or the entry is not pending: already acked or never
        delivered), Unavailable.
        """
        names.check_entry_id(entry_id)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidArgument("reason is required: say why the event failed", field="reason")
        if len(reason) > MAX_REASON_LENGTH:
            reason = reason[: MAX_REASON_LENGTH - 3] + "..."
        cfg = await self._check_group(stream, group)
        now = _now_ms()
        reply = await self._scripts["NACK"](
            keys=[stream, self._retry_key(stream, group), self._reasons_key(stream, group), self.dlq_key(stream)],
            args=[group, entry_id, reason, now, cfg.max_deliveries, *(cfg.backoff.delay_ms(n) for n in range(1, cfg.max_deliveries + 1))],
        )
        outcome = reply[0]
        self.observer.nacked(stream, group)
        if outcome == "retry":
            due = int(reply[1])
            key = (stream, group)
            loop = asyncio.get_running_loop()
            at = loop.time() + max(0, due - _now_ms()) / 1000
            self._next_due[key] = min(self._next_due.get(key, float("inf")), at)
            return NackResult(entry_id, "retry", retry_at_ms=due)
        if outcome == "dead":
            self.observer.dead_lettered(stream, group, 1)
            log.warning("stream %s group %s: entry %s dead-lettered: %s", stream, group, entry_id, reason)
            return NackResult(entry_id, "dead_lettered", dead_letter_id=reply[1])
        if outcome == "gone":
            self.observer.gone(stream, group, 1)
            raise NotFound(f"entry {entry_id} was trimmed or deleted from {stream} before it could be dead-lettered; acked away", field="id")
        raise NotFound(f"entry {entry_id} is not pending in group {group!r} of {stream!r} (already acked, or never delivered)", field="id")

    @_redis_errors
    async def peek_next(self, stream: str, block_ms: int = 0) -> Delivery | None:
        """Wait up to ``block_ms`` for the next event published to ``stream`` and return it
        without touching any consumer group (nothing becomes pending, nothing is acked).
        Used for "listen for a test event". Raises InvalidArgument, NotFound, Unavailable.
        """
        self.stream_config(stream)
        self._validate_read(1, block_ms)
        reply = await self.redis.xread({stream: "$"}, count=1, block=block_ms if block_ms > 0 else None)
        if not reply:
            return None
        eid, fields = reply[0][1][0]
        return self._delivery(stream, "", "", eid, fields, 0)

    # ------------------------------------------------------------------ channels
    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[ChannelMessage]:
        """Yield messages published on informational channels from now on (at-most-once:
        Pub/Sub keeps nothing for absent subscribers). Raises NotFound, Unavailable."""
        if not channels:
            raise InvalidArgument("name at least one channel", field="channel")
        for c in channels:
            self.check_channel(c)
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
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
            try:
                await pubsub.aclose()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    # ------------------------------------------------------------------ groups & replay
    @_redis_errors
    async def create_group(self, stream: str, group: str, start: str = "new") -> bool:
        """Create a consumer group at ``new`` (``$``), ``all`` (``0``) or after an entry id.
        Returns False if it already existed (left unchanged). Raises InvalidArgument, NotFound."""
        self.stream_config(stream)
        names.check_group(group)
        if start == "new":
            start_id = "$"
        elif start == "all":
            start_id = "0"
        else:
            start_id = names.check_entry_id(start, "start")
        return await self._create_group(stream, group, start_id)

    @_redis_errors
    async def destroy_group(self, stream: str, group: str, force: bool = False) -> int:
        """Destroy a consumer group and its retry schedule. Returns the pending entries it held.

        Refuses (Conflict) when the group still holds pending entries, unless ``force``:
        those entries would never be processed by it. Raises NotFound if it does not exist.
        """
        self.stream_config(stream)
        names.check_group(group)
        groups = {g["name"]: g for g in await self._xinfo_groups(stream)}
        if group not in groups:
            raise NotFound(f"group {group!r} does not exist on stream {stream!r}", field="group")
        pending = int(groups[group]["pending"])
        if pending and not force:
            raise Conflict(
                f"group {group!r} holds {pending} pending entries; process or dead-letter them first, or force the destroy",
                details={"pending": pending},
            )
        await self.redis.xgroup_destroy(stream, group)
        await self.redis.delete(self._retry_key(stream, group), self._reasons_key(stream, group))
        self._known_groups.pop(stream, None)
        return pending

    @_redis_errors
    async def rewind(self, stream: str, group: str, to_id: str | None = None, to_time_ms: int | None = None) -> str:
        """Move a group's last-delivered id back (or forward) so entries after it are delivered again.

        Give ``to_id`` (entries after it are redelivered) or ``to_time_ms`` (entries published
        at or after that time are redelivered). Pending entries are untouched. Returns the id
        set. Raises InvalidArgument, NotFound.
        """
        self.stream_config(stream)
        names.check_group(group)
        if (to_id is None) == (to_time_ms is None):
            raise InvalidArgument("give exactly one of to_id or to_time_ms", field="to_id")
        if to_id is not None:
            target = names.check_entry_id(to_id, "to_id")
        else:
            if isinstance(to_time_ms, bool) or not isinstance(to_time_ms, int) or not 0 <= to_time_ms <= names.U64_MAX:
                raise InvalidArgument("to_time_ms must be a Unix time in milliseconds", field="to_time_ms")
            target = names.id_before_time(to_time_ms)
        try:
            await self.redis.xgroup_setid(stream, group, target)
        except rexc.ResponseError as exc:
            text = str(exc)
            if "NOGROUP" in text or "no such key" in text.lower() or "requires the key to exist" in text:
                raise NotFound(f"group {group!r} does not exist on stream {stream!r}", field="group") from exc
            raise
        return target

    def _dead_letter(self, stream: str, dlq_id: str, fields: dict[str, str]) -> DeadLetter:
        original = codec.strip_dead_letter_fields(fields)
        original_id = fields.get(codec.F_DLQ_ORIGINAL_ID, dlq_id)
        payload, meta = codec.decode_event(original_id, original)

        def _int(v: str | None) -> int:
            try:
                return int(v or 0)
            except ValueError:
                return 0

        return DeadLetter(
            dlq_id=dlq_id,
            stream=stream,
            original_id=original_id,
            group=fields.get(codec.F_DLQ_GROUP, ""),
            reason=fields.get(codec.F_DLQ_REASON, ""),
            delivery_count=_int(fields.get(codec.F_DLQ_DELIVERIES)),
            dead_lettered_at_ms=_int(fields.get(codec.F_DLQ_AT)),
            payload=payload,
            meta=meta,
        )

    @_redis_errors
    async def dlq_list(self, stream: str, count: int = 100, after: str | None = None) -> list[DeadLetter]:
        """List dead letters of a stream, oldest first (``after``: exclusive start id)."""
        self.stream_config(stream)
        self._validate_read(count, 0)
        start = "-" if after is None else "(" + names.check_entry_id(after, "after")
        entries = await self.redis.xrange(self.dlq_key(stream), start, "+", count=count)
        return [self._dead_letter(stream, eid, fields) for eid, fields in entries]

    @_redis_errors
    async def dlq_replay(self, stream: str, ids: Sequence[str] | Literal["all"]) -> list[ReplayResult]:
        """Publish dead letters again into their stream (as new entries, seen by every group of
        the stream) and remove them from the dead-letter stream, each atomically.

        ``ids`` names the dead letters to replay, or is the word ``"all"`` for every one: an
        empty list is refused, so a forgotten argument never replays everything.
        Raises InvalidArgument (no ids, bad id), NotFound (a given id is not a dead letter).
        """
        self.stream_config(stream)
        dlq = self.dlq_key(stream)
        if isinstance(ids, str):
            if ids != "all":
                raise InvalidArgument(f"ids must be a list of dead-letter ids or 'all' (got {ids!r})", field="ids")
            todo = [eid for eid, _ in await self.redis.xrange(dlq, "-", "+")]
        else:
            if not ids:
                raise InvalidArgument("name the dead letters to replay (ids), or say all to replay every one", field="ids")
            for i in ids:
                names.check_entry_id(i, "ids")
            for i in ids:
                if not await self.redis.xrange(dlq, i, i):
                    raise NotFound(f"{i} is not in the dead-letter stream of {stream!r}", field="ids")
            todo = list(ids)
        out = []
        for i in todo:
            new_id = await self._scripts["REPLAY"](keys=[dlq, stream], args=[i, codec.F_REPLAYED_FROM])
            if new_id:
                out.append(ReplayResult(dlq_id=i, new_entry_id=new_id))
        return out

    # ------------------------------------------------------------------ maintenance
    async def _xinfo_groups(self, stream: str) -> list[dict[str, Any]]:
        try:
            return list(await self.redis.xinfo_groups(stream))
        except rexc.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return []
            raise

    async def safe_boundary(self, stream: str) -> str:
        """The id before which every group has acknowledged every entry."""
        boundary = _TOP
        for g in await self._xinfo_groups(stream):
            b = names.next_id(g["last-delivered-id"])
            if int(g["pending"]) > 0:
                summary = await self.redis.xpending(stream, g["name"])
                if summary and summary.get("min"):
                    b = min(b, summary["min"], key=names.id_key)
            boundary = min(boundary, b, key=names.id_key)
        return boundary

    @_redis_errors
    async def trim(self, stream: str) -> TrimReport:
        """Trim a stream to its retention bound, removing only entries every group has acked.

        Unacknowledged entries are never removed, even beyond the bound: they are reported
        in ``kept_unacked`` (and raise the backlog alert in :meth:`status`).
        """
        cfg = self.stream_config(stream)
        boundary = await self.safe_boundary(stream)
        removed = 0
        length = int(await self.redis.xlen(stream))
        while True:
            n, length = await self._scripts["SAFE_TRIM"](keys=[stream], args=[cfg.retention, boundary, TRIM_CHUNK])
            removed += int(n)
            if int(n) < TRIM_CHUNK:
                break
        length = int(length)
        return TrimReport(
            stream=stream,
            removed=removed,
            length_after=length,
            kept_unacked=max(0, length - cfg.retention),
            safe_boundary=None if boundary == _TOP else boundary,
        )

    @_redis_errors
    async def sweep_dead(self, stream: str) -> int:
        """Dead-letter entries that reached ``max_deliveries`` and sat idle past the claim time,
        for every group of the stream, even when no consumer reads any more. Returns the count."""
        cfg = self.stream_config(stream)
        total = 0
        for g in await self._xinfo_groups(stream):
            if int(g["pending"]) == 0:
                continue
            group = g["name"]
            dead, gone = await self._scripts["SWEEP"](
                keys=[stream, self._retry_key(stream, group), self._reasons_key(stream, group), self.dlq_key(stream)],
                args=[group, _now_ms(), cfg.max_deliveries, cfg.claim_idle_ms, 1000],
            )
            if dead:
                self.observer.dead_lettered(stream, group, int(dead))
                log.warning("stream %s group %s: %d entries dead-lettered by the recovery sweep", stream, group, dead)
            if gone:
                self.observer.gone(stream, group, int(gone))
            total += int(dead)
        return total

    @_redis_errors
    async def remove_idle_consumers(self, stream: str, max_idle_ms: int) -> list[tuple[str, str]]:
        """Delete consumers idle longer than ``max_idle_ms`` that hold no pending entry.
        A consumer holding pending entries is never deleted (checked atomically)."""
        self.stream_config(stream)
        removed = []
        for g in await self._xinfo_groups(stream):
            for c in await self.redis.xinfo_consumers(stream, g["name"]):
                if int(c["pending"]) == 0 and int(c["idle"]) >= max_idle_ms:
                    ok = await self._scripts["DELETE_IDLE_CONSUMER"](keys=[stream], args=[g["name"], c["name"], max_idle_ms])
                    if int(ok):
                        removed.append((g["name"], c["name"]))
        return removed

    # ------------------------------------------------------------------ status
    def stream_names(self) -> list[str]:
        return list(self.topology.streams)

    @_redis_errors
    async def stream_status(self, stream: str) -> StreamStatus:
        """Snapshot of one stream: length, ends, dead letters, groups, consumers and alerts."""
        cfg = self.stream_config(stream)
        s = self.settings
        now = _now_ms()
        try:
            info = await self.redis.xinfo_stream(stream)
        except rexc.ResponseError as exc:
            if "no such key" not in str(exc).lower():
                raise
            info = None
        dlq_len = int(await self.redis.xlen(self.dlq_key(stream)))
        groups: list[GroupStatus] = []
        oldest_pending: str | None = None
        for g in await self._xinfo_groups(stream):
            name = g["name"]
            consumers = [
                ConsumerStatus(name=c["name"], pending=int(c["pending"]), idle_ms=int(c["idle"]))
                for c in await self.redis.xinfo_consumers(stream, name)
            ]
            pending = int(g["pending"])
            if pending:
                summary = await self.redis.xpending(stream, name)
                if summary and summary.get("min"):
                    m = summary["min"]
                    if oldest_pending is None or names.id_key(m) < names.id_key(oldest_pending):
                        oldest_pending = m
            lag = g.get("lag")
            if lag is None:
                lag = int(await self._scripts["COUNT_AFTER"](keys=[stream], args=[g["last-delivered-id"], LAG_COUNT_CAP]))
            groups.append(
                GroupStatus(
                    name=name,
                    consumers=consumers,
                    pending=pending,
                    lag=int(lag),
                    last_delivered_id=g["last-delivered-id"],
                    retry_scheduled=int(await self.redis.zcard(self._retry_key(stream, name))),
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
        st.alerts = self._alerts(st, cfg, s)
        return st

    @staticmethod
    def _alerts(st: StreamStatus, cfg: StreamConfig, s: Settings) -> list[Alert]:
        alerts: list[Alert] = []

        def add(group: str | None, metric: str, value: int, threshold: int, message: str) -> None:
            alerts.append(Alert(st.name, group, metric, value, threshold, message))

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
        return alerts

    @_redis_errors
    async def status(self, streams: Sequence[str] | None = None) -> BusStatus:
        """Snapshot of every stream of the topology (or the named ones), with alerts."""
        names_ = list(streams) if streams else self.stream_names()
        items = [await self.stream_status(n) for n in names_]
        return BusStatus(
            redis_version=self.redis_version,
            streams=items,
            channels=list(self.topology.channels),
            alerts=[a for st in items for a in st.alerts],
            generated_at_ms=_now_ms(),
        )

    @_redis_errors
    async def list_streams(self) -> list[StreamInfo]:
        """The topology's streams with their groups (also those created at run time) and retention."""
        groups: dict[str, list[str]] = {}
        for stream, group in await self.list_groups():
            groups.setdefault(stream, []).append(group)
        return [
            StreamInfo(name=n, groups=groups.get(n, []), retention=self.stream_config(n).retention)
            for n in self.stream_names()
        ]

    @_redis_errors
    async def list_groups(self, stream: str | None = None) -> list[tuple[str, str]]:
        """(stream, group) pairs: the topology's plus any created at run time."""
        streams = [stream] if stream else self.stream_names()
        out: list[tuple[str, str]] = []
        for s in streams:
            cfg = self.stream_config(s)
            found = [g["name"] for g in await self._xinfo_groups(s)]
            for g in list(cfg.groups) + [g for g in found if g not in cfg.groups]:
                out.append((s, g))
        return out
