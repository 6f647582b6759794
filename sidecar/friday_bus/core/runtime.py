"""Runtime: owns Redis (embedded or external), the bus, and the background loops.

Start order: Redis (embedded child, if ``settings.embedded``: standalone mode without
FRIDAY_REDIS_URL) → connect (two clients for FRIDAY_REDIS_MODE, core/connection.py) and check
version → setup → loops. Stop order: loops → (the transports drain their in-flight calls in between) →
close the Redis client → stop the embedded child.

Background loops, each small and independent, started and stopped together:

* ``sweep``: dead-letters entries that exhausted their deliveries while nobody reads;
* ``trim``: the safe trim (only entries every group acked);
* ``monitor``: re-runs setup if Redis lost it, logs alerts, refreshes the status that metrics read;
* ``consumer_gc``: removes consumers idle for long that hold nothing pending;
* ``sentinel`` (sentinel mode only): every :data:`SENTINEL_REFRESH_S`, asks the sentinels for
  the master and moves the connections still on another node (``connection.refresh_master``):
  redis-py alone would keep a busy pool on an old master that stays up after a failover.

With FRIDAY_WORKERS > 1 (friday_bus/workers.py) the supervisor's Runtime runs Redis, the setup
and the loops; each worker's Runtime only connects (``start(run_setup=False, loops=False,
refresh_loop=True)``: the sentinel loop is per process, it moves that process's connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster

from . import tracing
from .bus import BusObserver, EventBus
from .connection import RedisDescription
from .embedded import EmbeddedRedis, socket_alive
from .errors import FridayError, Unavailable
from .models import BusStatus
from .settings import Settings, Topology, build_topology

log = logging.getLogger("friday.runtime")

READY_PING_TIMEOUT_S = 2.0
"""How long a readiness check waits for Redis before it says not ready."""
SENTINEL_REFRESH_S = 1.0
"""Sentinel mode: how often the runtime asks the sentinels which master serves now."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """What the doors show when the sidecar is ready (HTTP ``/readyz``)."""

    redis_version: str
    mode: str
    masters: tuple[str, ...]
    """``host:port`` of the master(s) serving now (one per shard on a cluster)."""


class Runtime:
    def __init__(self, settings: Settings, topology: Topology | None = None, observer: BusObserver | None = None) -> None:
        self.settings = settings
        self.topology = topology or build_topology(settings)
        self.observer = observer
        self.embedded: EmbeddedRedis | None = None
        self.bus: EventBus | None = None
        self.last_status: BusStatus | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = False
        self.sentinel_master: str | None = None
        """Sentinel mode: ``host:port`` of the master the last refresh found."""

    async def start(self, *, run_setup: bool = True, loops: bool = True, attach: bool = False,
                    refresh_loop: bool | None = None) -> EventBus:
        """Start Redis if embedded, connect, check the version, run setup, start the loops.

        ``attach``: with the embedded default, use an already running embedded Redis of the
        same data folder (the CLI next to a running ``friday serve``) instead of refusing.
        ``refresh_loop`` (default: as ``loops``): in sentinel mode, run the ``sentinel`` loop even
        without the others. It moves *this process's* connections, so every process serving calls
        needs its own (a worker of FRIDAY_WORKERS > 1), while sweep, trim, monitor and consumer_gc
        act on Redis and run once, in the supervisor.
        """
        s = self.settings
        url = s.redis_url
        if s.embedded:
            emb = EmbeddedRedis(s.data_dir, s.redis_server_bin, s.embedded_appendfsync)
            if attach and socket_alive(emb.socket_path):
                url = emb.url
            else:
                # Started from the event loop's own thread on purpose: the parent-death signal
                # is tied to the thread that forks, and worker threads may end before the process.
                url = emb.start()
                self.embedded = emb
        try:
            self.bus = EventBus.from_url(url, s, self.topology, self.observer)
            await self.bus.check_server()
            if s.redis_mode == "sentinel":
                with contextlib.suppress(Exception):  # check_server reached it: this only names it
                    self.sentinel_master = await self.bus.refresh_master()
            if run_setup:
                report = await self.bus.setup(s.setup_start)
                if report.created_groups:
                    log.info("setup created groups: %s", ", ".join(f"{a}/{b}" for a, b in report.created_groups))
            if loops:
                self._start_loops()
            if (loops if refresh_loop is None else refresh_loop) and s.redis_mode == "sentinel":
                self._tasks.append(asyncio.create_task(self._every("sentinel", SENTINEL_REFRESH_S, self.refresh_master_once),
                                                       name="friday-sentinel"))
        except BaseException:
            await self.stop()
            raise
        self.ready = True
        return self.bus

    async def check_ready(self) -> Readiness:
        """The one readiness decision, for every door (HTTP ``/readyz``, gRPC health).

        Ready means: started, Redis answers within :data:`READY_PING_TIMEOUT_S`, and the
        topology setup is in Redis. Returns the Redis version, the mode and the master(s)
        serving now; raises Unavailable saying which of the three is missing (and what to do).
        """
        bus = self.bus
        if bus is None or not self.ready:
            raise Unavailable("the sidecar is starting: Redis not connected or setup not done yet")
        try:
            await asyncio.wait_for(bus.ping(), READY_PING_TIMEOUT_S)
            setup_done = await asyncio.wait_for(bus.is_setup(), READY_PING_TIMEOUT_S)
        except TimeoutError:
            raise Unavailable(f"Redis did not answer within {READY_PING_TIMEOUT_S:.0f} s") from None
        if not setup_done:
            raise Unavailable(
                "Redis answers but the topology setup is missing (Redis restarted empty?): "
                "the sidecar re-runs it within FRIDAY_MONITOR_INTERVAL_S, or restart it"
            )
        return Readiness(bus.redis_version, self.settings.redis_mode, await self._masters())

    async def _masters(self) -> tuple[str, ...]:
        """The serving master(s), cheaply: sentinel: the one the last refresh found (else asked);
        cluster: the client's slot map; standalone: the URL's node."""
        bus = self.bus
        assert bus is not None
        if self.settings.redis_mode == "sentinel":
            if self.sentinel_master is None:
                with contextlib.suppress(Exception):
                    self.sentinel_master = await asyncio.wait_for(bus.refresh_master(), READY_PING_TIMEOUT_S)
            return (self.sentinel_master,) if self.sentinel_master else ()
        redis = bus.redis
        if isinstance(redis, RedisCluster):
            return tuple(sorted(n.name for n in redis.get_primaries()))
        kw = redis.connection_pool.connection_kwargs
        return (str(kw["path"]) if kw.get("path") else f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}",)

    async def describe(self) -> RedisDescription:
        """Mode, nodes and serving master(s), asked of Redis now (``friday status``, ``friday config``)."""
        if self.bus is None:
            raise Unavailable("the sidecar is starting: Redis not connected yet")
        return await self.bus.describe()

    def _start_loops(self) -> None:
        s = self.settings
        self._tasks = [
            asyncio.create_task(self._every("sweep", max(1.0, s.claim_interval_ms / 1000), self._sweep_once), name="friday-sweep"),
            asyncio.create_task(self._every("trim", s.trim_interval_s, self.trim_once), name="friday-trim"),
            asyncio.create_task(self._every("monitor", s.monitor_interval_s, self._monitor_once), name="friday-monitor"),
            asyncio.create_task(self._every("consumer_gc", max(s.monitor_interval_s, 60.0), self._gc_once), name="friday-gc"),
        ]
        log.info("background loops started: sweep, trim, monitor, consumer_gc")

    async def refresh_master_once(self) -> None:
        """Sentinel mode: ask the sentinels for the master; move the connections if it changed."""
        assert self.bus is not None
        try:
            master = await self.bus.refresh_master()
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            raise Unavailable(f"no sentinel names a live master for {self.settings.redis_sentinel_master!r}: {exc}") from exc
        if master != self.sentinel_master:
            if self.sentinel_master is not None:
                log.warning("sentinel: master of %s is now %s (was %s)", self.settings.redis_sentinel_master, master, self.sentinel_master)
            self.sentinel_master = master

    async def _every(self, name: str, interval: float, step: Callable[[], Awaitable[object]]) -> None:
        failures = 0
        while True:
            try:
                await step()
                failures = 0
            except asyncio.CancelledError:
                raise
            except FridayError as exc:
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning("%s loop: %s (attempt %d)", name, exc.message, failures)
            except Exception:
                failures += 1
                log.exception("%s loop failed", name)
            await asyncio.sleep(interval * (1 if failures == 0 else min(8, 2 ** min(failures, 3))))

    async def _sweep_once(self) -> None:
        assert self.bus is not None
        for stream in self.bus.stream_names():
            await self.bus.sweep_dead(stream)

    async def trim_once(self) -> None:
        assert self.bus is not None
        for stream in self.bus.stream_names():
            report = await self.bus.trim(stream)
            if report.removed:
                log.info("trim %s: removed %d acked entries, length %d", stream, report.removed, report.length_after)
            if report.kept_unacked:
                log.warning("trim %s: %d entries over retention kept: not yet acknowledged by every group", stream, report.kept_unacked)

    async def _monitor_once(self) -> None:
        assert self.bus is not None
        if not await self.bus.is_setup():
            # Redis lost its data (restarted without persistence, flushed): recreate streams and groups.
            report = await self.bus.setup(self.settings.setup_start)
            log.warning("Redis had lost the setup (restarted empty?): setup re-run, %d groups recreated", len(report.created_groups))
        status = await self.bus.status()
        previous = {(a.stream, a.group, a.metric) for a in (self.last_status.alerts if self.last_status else [])}
        for alert in status.alerts:
            if (alert.stream, alert.group, alert.metric) not in previous:
                log.warning("ALERT %s", alert.message)
        self.last_status = status

    async def _gc_once(self) -> None:
        assert self.bus is not None
        max_idle_ms = int(self.settings.consumer_max_idle_s * 1000)
        for stream in self.bus.stream_names():
            for group, consumer in await self.bus.remove_idle_consumers(stream, max_idle_ms):
                log.info("removed idle consumer %s of %s/%s (no pending entries)", consumer, stream, group)

    async def stop_loops(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    async def stop(self) -> None:
        self.ready = False
        await self.stop_loops()
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await self.bus.close()
            self.bus = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None
        await asyncio.to_thread(tracing.flush)  # spans still buffered (tracing on only)
