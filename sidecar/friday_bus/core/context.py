"""What every role of the bus shares: the Redis client, the settings and topology, the
observer, the key names, the registered scripts, and the lookups of streams, channels and
groups (with the small cache of groups created at run time).

One :class:`BusContext` is built by :class:`~friday_bus.core.bus.EventBus` and handed to each
role object (publishing, consuming, admin, status).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.commands.core import AsyncScript

from . import names, scripts, tracing
from .connection import AckedWrite, refresh_master, script_then_wait, write_then_wait
from .errors import InvalidArgument, NotFound, Unavailable
from .keys import Keys
from .limits import MAX_BLOCK_MS, MAX_READ_COUNT
from .observer import BusObserver
from .replies import ReplyKind, reply_kind
from .settings import Settings, StreamConfig, Topology

GROUP_CACHE_S = 5.0
"""How long the groups found on a stream (also those created at run time) are trusted."""


def now_ms() -> int:
    return int(time.time() * 1000)


def check_read_args(count: int, block_ms: int) -> None:
    """``count`` and ``block_ms`` of a read (or a listing). Raises InvalidArgument."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_READ_COUNT:
        raise InvalidArgument(f"count must be between 1 and {MAX_READ_COUNT} (got {count!r})", field="count")
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or not 0 <= block_ms <= MAX_BLOCK_MS:
        raise InvalidArgument(f"block_ms must be between 0 and {MAX_BLOCK_MS} (got {block_ms!r})", field="block_ms")


@dataclasses.dataclass(frozen=True)
class Scripts:
    """The Lua scripts of :mod:`~friday_bus.core.scripts`, registered on the client (sent by SHA)."""

    publish: AsyncScript
    claim: AsyncScript
    nack: AsyncScript
    sweep: AsyncScript
    safe_trim: AsyncScript
    delete_idle_consumer: AsyncScript
    replay: AsyncScript
    count_after: AsyncScript
    extend: AsyncScript
    release: AsyncScript

    @classmethod
    def register(cls, client: aioredis.Redis) -> Scripts:
        return cls(**{
            f.name: client.register_script(getattr(scripts, f.name.upper())) for f in dataclasses.fields(cls)
        })


class BusContext:
    def __init__(self, client: aioredis.Redis, settings: Settings, topology: Topology, observer: BusObserver,
                 blocking: aioredis.Redis | None = None) -> None:
        self.redis = client
        """Every command that answers at once (core/connection.py: ``build_client(settings, url)``)."""
        self.blocking = blocking if blocking is not None else client
        """XREADGROUP / XREAD with BLOCK only: its read timeout covers MAX_BLOCK_MS on top of the
        socket timeout (``build_client(settings, url, block_ms=MAX_BLOCK_MS)``), and its own pool
        keeps waiting reads from taking the connections publishes need."""
        self.settings = settings
        self.topology = topology
        self.observer = observer
        self.tracer: tracing.BusTracer | None = tracing.from_env()
        """Spans, when the OTEL_* variables turn tracing on (core/tracing.py); None (the default): off."""
        self.keys = Keys(settings.key_prefix)
        self.scripts = Scripts.register(client)
        self.redis_version = ""
        self.mode = settings.redis_mode
        self.replicas_ack = settings.min_replicas_ack
        """FRIDAY_MIN_REPLICAS_ACK: replicas that must confirm a stream write (WAIT) before it is acknowledged."""
        self.unconfirmed_dead_letters = 0
        """Dead letters written without the replicas' confirmation (logged; see consuming.dead_letter_unconfirmed)."""
        self._known_groups: dict[str, tuple[float, set[str]]] = {}

    # ------------------------------------------------------------------ replica-acknowledged writes
    async def acked_script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> AckedWrite:
        """Run a script whose keys share one slot (``keys[0]`` routes it on a cluster); with
        FRIDAY_MIN_REPLICAS_ACK=N > 0, then WAIT for N replicas on the same connection
        (:func:`~.connection.script_then_wait`). The caller decides what an unconfirmed write means."""
        if self.replicas_ack == 0:
            return AckedWrite(await script(keys=keys, args=args), 0, 0)
        return await script_then_wait(self.redis, script, keys, args, replicas=self.replicas_ack,
                                      timeout_ms=self.settings.replica_ack_timeout_ms)

    async def acked_command(self, command: tuple[Any, ...], key: str) -> AckedWrite:
        """One write command (``key`` routes it), then WAIT as :meth:`acked_script` does."""
        if self.replicas_ack == 0:
            return AckedWrite(await self.redis.execute_command(*command), 0, 0)
        return await write_then_wait(self.redis, command, key=key, replicas=self.replicas_ack,
                                     timeout_ms=self.settings.replica_ack_timeout_ms)

    async def refresh_master(self) -> str | None:
        """Sentinel mode: move both clients' connections to the master the sentinels name now
        (:func:`~.connection.refresh_master`); None in the other modes."""
        master = await refresh_master(self.redis)
        if self.blocking is not self.redis:
            await refresh_master(self.blocking)
        return master

    # ------------------------------------------------------------------ topology
    def stream_config(self, stream: str) -> StreamConfig:
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

    def stream_names(self) -> list[str]:
        return list(self.topology.streams)

    def is_channel(self, name: str) -> bool:
        return name in self.topology.channels

    def channel_names(self) -> list[str]:
        return list(self.topology.channels)

    def check_channel(self, name: str) -> str:
        names.check_channel(name)
        if name not in self.topology.channels:
            hint = " It is a critical stream: publish it as an event, not as an informational message." if (
                name in self.topology.streams) else ""
            raise NotFound(
                f"unknown channel {name!r}; known channels: {', '.join(self.topology.channels) or 'none'}.{hint}",
                field="channel",
            )
        return name

    # ------------------------------------------------------------------ groups
    async def existing_groups(self, stream: str, refresh: bool = False) -> set[str]:
        """The groups Redis holds on ``stream`` (cached for :data:`GROUP_CACHE_S`)."""
        cached = self._known_groups.get(stream)
        if cached and not refresh and time.monotonic() - cached[0] < GROUP_CACHE_S:
            return cached[1]
        try:
            groups = {g["name"] for g in await self.redis.xinfo_groups(stream)}
        except rexc.ResponseError as exc:
            if reply_kind(exc) is not ReplyKind.NO_SUCH_KEY:
                raise  # LOADING, READONLY in a failover...: classified by the facade, not "no group"
            groups = set()
        self._known_groups[stream] = (time.monotonic(), groups)
        return groups

    def forget_groups(self, stream: str) -> None:
        """Drop the cached groups of ``stream`` (one was created or destroyed)."""
        self._known_groups.pop(stream, None)

    async def check_group(self, stream: str, group: str) -> StreamConfig:
        """The stream's configuration, once the group is known to exist. Raises InvalidArgument, NotFound."""
        cfg = self.stream_config(stream)
        names.check_group(group)
        if group in cfg.groups:
            return cfg
        if group in await self.existing_groups(stream) or group in await self.existing_groups(stream, refresh=True):
            return cfg
        raise NotFound(
            f"group {group!r} does not exist on stream {stream!r}; create it (friday group create / "
            f"POST /api/v1/streams/{stream}/groups) or declare it in the topology",
            field="group",
        )

    async def xinfo_groups(self, stream: str) -> list[dict[str, Any]]:
        """XINFO GROUPS; a stream that does not exist has no group."""
        try:
            return list(await self.redis.xinfo_groups(stream))
        except rexc.ResponseError as exc:
            if reply_kind(exc) is ReplyKind.NO_SUCH_KEY:
                return []
            raise

    async def create_group(self, stream: str, group: str, start_id: str, confirm: bool = False) -> bool:
        """Create a group (and the stream if missing). False if it already existed (left unchanged).

        ``confirm`` (a group created on request): with FRIDAY_MIN_REPLICAS_ACK=N > 0, WAIT for N
        replicas as a publish does, so a group the caller was told exists survives a failover;
        not confirmed in time raises Unavailable (creating it again is harmless: False)."""
        try:
            if confirm:
                ack = await self.acked_command(("XGROUP", "CREATE", stream, group, start_id, "MKSTREAM"), stream)
            else:
                await self.redis.xgroup_create(stream, group, start_id, mkstream=True)
        except rexc.ResponseError as exc:
            if reply_kind(exc) is ReplyKind.BUSYGROUP:
                return False
            raise
        self.forget_groups(stream)
        if confirm and not ack.confirmed:
            self.observer.replica_ack_missing("create_group", ack.replicas, ack.requested)
            raise Unavailable(
                f"group {group!r} was created on the master but not confirmed by {ack.requested} replica(s) within "
                f"{self.settings.replica_ack_timeout_ms} ms (FRIDAY_MIN_REPLICAS_ACK; {ack.replicas} confirmed): "
                "a failover now could lose it; retry (creating it again is harmless)",
                details={"replicas": ack.replicas, "min_replicas_ack": ack.requested},
            )
        return True
