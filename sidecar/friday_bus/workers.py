"""FRIDAY_WORKERS > 1: `friday serve` supervises that many worker processes on the same ports.

One sidecar process has one event loop for both doors, so it never uses more than one core.
The sidecar keeps no state of its own beyond Redis, so N processes can serve the same ports:

* the **supervisor** (this module, the `friday serve` process) owns what must exist once: the
  embedded Redis (FRIDAY_REDIS_URL unset), the setup (run once, before any worker starts) and the
  background loops (sweep, trim, monitor, consumer_gc: Runtime._start_loops). It imports neither
  grpc nor the doors' servers: it only starts processes;
* each **worker** is ``python -m friday_bus.workers --worker ...``: the usual :func:`server.serve`
  with a :class:`server.WorkerRole`: a Runtime that only connects (the embedded Redis's URL comes
  through FRIDAY_REDIS_URL; no setup, no loops but sentinel mode's per-process master refresh),
  and both doors on the configured ports with SO_REUSEPORT (the kernel spreads new connections
  over the workers; ``server._bind`` says why not one shared socket). What a call does never
  depends on the worker serving it: consumer groups live in Redis, consumer names come from callers.

Supervision: the startup line (as one process prints it, plus ``, N workers``) comes once every
worker listens; a worker failing during start-up stops everything (exit non-zero, its error above).
A worker that dies later is logged and restarted after :data:`WORKER_RESTART_BACKOFF_S` (doubling
while it keeps dying young, up to :data:`WORKER_RESTART_BACKOFF_MAX_S`); the others serve on.
SIGTERM/SIGINT: SIGTERM to every worker, which drains as one process does (FRIDAY_SHUTDOWN_GRACE_S),
then the loops stop, the Redis client closes and the embedded Redis stops: the order of one process.
A second signal SIGKILLs the workers. Workers run in their own process group (a terminal's Ctrl-C
reaches the supervisor only, which forwards it once) and die with the supervisor
(PR_SET_PDEATHSIG: SIGTERM if it is killed).

Metrics: prometheus_client's multiprocess mode, in a temporary PROMETHEUS_MULTIPROC_DIR of the
supervisor (set before prometheus_client is imported, here and in the workers; removed at exit):
see friday_bus/metrics.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from .core.errors import ConfigError, FridayError
from .core.settings import Settings, load_settings

log = logging.getLogger("friday.workers")

WORKER_RESTART_BACKOFF_S = 1.0
"""Wait before restarting a worker that died; doubled for each death within WORKER_STABLE_S of its start."""
WORKER_RESTART_BACKOFF_MAX_S = 30.0
WORKER_STABLE_S = 60.0
"""A worker that served this long before it died restarts after WORKER_RESTART_BACKOFF_S again."""
WORKER_START_TIMEOUT_S = 120.0
"""Longest a worker may take from its start to both doors listening (it connects to a Redis the
supervisor has just reached; generous for a loaded machine); past it, it is killed as failed."""
WORKER_STOP_MARGIN_S = 5.0
"""Beyond a worker's own stop deadline (grace + server.STOP_MARGIN_S + release drain): then SIGKILL."""
WORKER_ARG = "--worker"
_PR_SET_PDEATHSIG = 1


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    young_deaths: int = 0


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


async def _exited(proc: subprocess.Popen[bytes]) -> int:
    """Wait for ``proc`` to exit (a pidfd in the event loop; polling where there is none); its return code."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        while proc.poll() is None:
            await asyncio.sleep(0.1)
        return proc.returncode
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return proc.wait()


def _probe_port(host: str, port: int, door: str, port_env: str, host_env: str) -> None:
    """Fail fast, before Redis, if another process listens on a door's port: bound without
    SO_REUSEPORT, this refuses even a process that set it (the workers must not share with it)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"{host_env}={host!r} does not resolve ({exc.strerror}); use an address such as 127.0.0.1") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(f"cannot listen for {door} on {host}:{port}: {exc.strerror}. Is the port taken? Set {port_env} / {host_env}") from None


class Supervisor:
    """Runs the shared Runtime and keeps ``settings.workers`` workers serving (see the module docstring)."""

    def __init__(self, settings: Settings, metrics_dir: str) -> None:
        self.settings = settings
        self.metrics_dir = metrics_dir
        self.workers = [_Worker(i) for i in range(1, settings.workers + 1)]
        self.stopping = False
        self.stop = asyncio.Event()
        self.signals_seen = 0
        self.env: dict[str, str] = {}
        self._keepers: list[asyncio.Task[None]] = []

    # --- signals -------------------------------------------------------------------
    def on_signal(self, sig: int) -> None:
        self.signals_seen += 1
        if self.signals_seen == 1:
            log.info("%s received: stopping %d workers (grace %.1f s)", signal.Signals(sig).name, len(self.workers),
                     self.settings.shutdown_grace_s)
            self.stop.set()
        else:
            log.warning("second signal: killing the workers")
            self._signal_workers(signal.SIGKILL)

    def _signal_workers(self, sig: int) -> None:
        for w in self.workers:
            if w.proc is not None and w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(sig)

    # --- workers -------------------------------------------------------------------
    async def _spawn(self, w: _Worker) -> bool:
        """Start worker ``w``; True once both its doors listen, False if it exited first."""
        rfd, wfd = os.pipe()
        try:
            level = logging.getLogger().getEffectiveLevel()
            # Forked from the event loop's own thread on purpose (a short fork+exec): the worker's
            # parent-death signal is tied to the thread that forks it, and that one lives as long as we do.
            w.proc = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-m", "friday_bus.workers", WORKER_ARG, str(w.index), str(wfd), str(os.getpid()), str(level)],
                env=self.env, stdin=subprocess.DEVNULL, pass_fds=(wfd,), process_group=0,
            )
        finally:
            os.close(wfd)
        w.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        said = bytearray()
        outcome = loop.create_future()

        def readable() -> None:
            try:
                chunk = os.read(rfd, 64)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            said.extend(chunk)
            if not outcome.done() and (not chunk or said.startswith(b"ready")):
                outcome.set_result(bool(chunk))

        os.set_blocking(rfd, False)
        loop.add_reader(rfd, readable)
        try:
            # EOF before the word: the worker exited (or closed the pipe) during start
            return await asyncio.wait_for(outcome, WORKER_START_TIMEOUT_S)
        except TimeoutError:
            log.error("worker %d (pid %d) did not listen within %.0f s: killing it", w.index, w.proc.pid, WORKER_START_TIMEOUT_S)
            w.proc.kill()
            return False
        finally:
            loop.remove_reader(rfd)
            os.close(rfd)

    def _forget(self, w: _Worker) -> None:
        """A worker exited: drop its live gauge files (prometheus_client's bookkeeping; its counters stay counted)."""
        from prometheus_client.multiprocess import mark_process_dead

        if w.proc is not None:
            with contextlib.suppress(OSError):
                mark_process_dead(w.proc.pid, self.metrics_dir)

    async def _keep(self, w: _Worker) -> None:
        """Worker ``w`` serves: restart it each time it dies, until the supervisor stops."""
        while True:
            assert w.proc is not None
            code = await _exited(w.proc)
            self._forget(w)
            if self.stopping:
                return
            young = time.monotonic() - w.started_at < WORKER_STABLE_S
            w.young_deaths = w.young_deaths + 1 if young else 0
            delay = min(WORKER_RESTART_BACKOFF_MAX_S, WORKER_RESTART_BACKOFF_S * 2 ** max(0, w.young_deaths - 1))
            log.error("worker %d (pid %d) %s; restarting it in %.1f s", w.index, w.proc.pid, _describe_exit(code), delay)
            await asyncio.sleep(delay)
            if self.stopping:
                return
            if await self._spawn(w):
                log.warning("worker %d restarted (pid %d)", w.index, w.proc.pid)

    async def _stop_workers(self) -> None:
        self.stopping = True
        for t in self._keepers:
            t.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        running = [w for w in self.workers if w.proc is not None and w.proc.poll() is None]
        self._signal_workers(signal.SIGTERM)
        from .core.bus import RELEASE_DRAIN_S
        from .server import STOP_MARGIN_S

        deadline = max(0.0, self.settings.shutdown_grace_s) + STOP_MARGIN_S + RELEASE_DRAIN_S + WORKER_STOP_MARGIN_S
        assert all(w.proc is not None for w in running)
        waits = [asyncio.ensure_future(_exited(w.proc)) for w in running if w.proc is not None]
        if waits:
            _, late = await asyncio.wait(waits, timeout=deadline)
            if late:
                log.error("%d workers still running %.0f s after SIGTERM: killing them", len(late), deadline)
                self._signal_workers(signal.SIGKILL)
                await asyncio.wait(late)
        for w in running:
            self._forget(w)
            assert w.proc is not None
            code = w.proc.returncode
            if code != 0:
                log.warning("worker %d (pid %d) %s while stopping", w.index, w.proc.pid, _describe_exit(code))

    # --- the whole -----------------------------------------------------------------
    async def run(self) -> None:
        from .core import Runtime
        from .metrics import PrometheusObserver  # after PROMETHEUS_MULTIPROC_DIR is set (supervise)
        from .server import _listen_line, check_start

        s = self.settings
        check_start(s)
        _probe_port(s.http_host, s.http_port, "HTTP", "FRIDAY_HTTP_PORT", "FRIDAY_HTTP_HOST")
        _probe_port(s.grpc_host, s.grpc_port, "gRPC", "FRIDAY_GRPC_PORT", "FRIDAY_GRPC_HOST")
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.on_signal, sig)
                installed.append(sig)
        runtime = Runtime(s, observer=PrometheusObserver(multiprocess=True))
        try:
            try:
                await runtime.start()  # embedded Redis, setup, loops: once, here
            except FridayError as exc:
                raise ConfigError(f"cannot start: {exc.message}") from None
            self.env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=self.metrics_dir)
            if runtime.embedded is not None:
                self.env["FRIDAY_REDIS_URL"] = runtime.embedded.url
            starting: asyncio.Future[list[bool]] = asyncio.ensure_future(asyncio.gather(*(self._spawn(w) for w in self.workers)))
            stopped: asyncio.Future[Any] = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():  # a signal during start-up
                starting.cancel()
                with contextlib.suppress(BaseException):
                    await starting
                return
            stopped.cancel()
            failed = [w for w, ok in zip(self.workers, starting.result(), strict=True) if not ok]
            if failed:
                first = failed[0]
                assert first.proc is not None
                raise ConfigError(f"worker {first.index} {_describe_exit(first.proc.wait())} during start-up "
                                  "(its error is above); stopping")
            self._keepers = [asyncio.create_task(self._keep(w), name=f"friday-worker-{w.index}") for w in self.workers]
            print(_listen_line(s, s.http_port, SimpleNamespace(port=s.grpc_port), workers=len(self.workers)), flush=True)
            await self.stop.wait()
        finally:
            await self._stop_workers()
            try:
                await runtime.stop()  # loops, Redis client, embedded Redis
            except Exception:
                log.exception("error while stopping the runtime")
            for number in installed:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(number)
            log.info("stopped")


def supervise(settings: Settings) -> None:
    """Blocking entry point of ``friday serve`` with FRIDAY_WORKERS > 1. Raises ConfigError."""
    if not logging.getLogger().handlers:  # as server.serve does; the workers log at the level found here
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics_dir = tempfile.mkdtemp(prefix="friday-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before prometheus_client is imported
    try:
        asyncio.run(Supervisor(settings, metrics_dir).run())
    except KeyboardInterrupt:  # a signal before the handlers were installed
        sys.exit(130)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _die_with(supervisor_pid: int) -> None:
    """SIGTERM this worker when the supervisor dies (Linux prctl); exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != supervisor_pid:
        sys.exit(1)


def worker_main(argv: list[str]) -> None:
    """``python -m friday_bus.workers --worker INDEX READY_FD SUPERVISOR_PID LOG_LEVEL`` (started by the supervisor)."""
    if len(argv) != 5 or argv[0] != WORKER_ARG:
        sys.exit("friday_bus.workers is started by `friday serve` with FRIDAY_WORKERS > 1, not by hand")
    index, ready_fd, supervisor_pid, level = (int(a) for a in argv[1:])
    _die_with(supervisor_pid)
    logging.basicConfig(level=level, format=f"%(asctime)s %(levelname)s worker {index} %(name)s: %(message)s")
    try:
        settings = load_settings()
        from .server import WorkerRole, run

        run(settings, WorkerRole(index, ready_fd))
    except ConfigError as exc:
        print(f"friday worker {index}: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def _main() -> Any:
    return worker_main(sys.argv[1:])


if __name__ == "__main__":
    _main()
