"""`friday serve`: one process, one Runtime, two doors (HTTP and gRPC).

Start: check the API keys and the bind security → start the Runtime (embedded Redis when
FRIDAY_REDIS_URL is unset, setup, loops) → gRPC → HTTP, then one line per listener on stdout.

Stop (SIGTERM or SIGINT; a second signal forces it), within ``shutdown_grace_s``: stop
accepting and reading (SSE streams end, waiting long polls answer 503), let in-flight
requests finish, stop gRPC with the same grace, then stop the Runtime (loops, Redis client,
embedded Redis). Nothing is acked on behalf of a consumer: what a read had taken stays
pending and is redelivered after the claim time.

With FRIDAY_WORKERS > 1, `friday serve` is the supervisor of friday_bus/workers.py, and each of
its workers runs :func:`serve` with a :class:`WorkerRole`: no embedded Redis, no setup, no loops
(the supervisor's), both ports bound with SO_REUSEPORT, multiprocess metrics, and instead of the
listen line a word to the supervisor once both doors listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import uvicorn

from .auth import ApiKeys, check_bind_security
from .core import Runtime, Settings
from .core.errors import ConfigError, FridayError
from .http_api import create_app
from .http_api.lifecycle import Lifecycle
from .metrics import PrometheusObserver

log = logging.getLogger("friday.server")
STOP_MARGIN_S = 2.0


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process is worker ``index`` of a FRIDAY_WORKERS supervisor (friday_bus/workers.py)."""

    index: int
    ready_fd: int
    """Pipe to the supervisor: :data:`READY_WORD` is written to it once both doors listen."""


READY_WORD = b"ready\n"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: :func:`serve` owns the signals and the shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def redact_url(url: str) -> str:
    """A Redis URL without its password (for logs and the startup line)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "redis (URL hidden)"
    if parts.password is None and not parts.username:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username + ':' if parts.username else ':'}***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """The HTTP listening socket. ``reuse_port`` (the workers of FRIDAY_WORKERS > 1): each worker
    binds its own socket with SO_REUSEPORT rather than sharing one socket the supervisor passes
    down: the kernel then spreads new connections evenly over the workers' accept queues (with one
    shared socket, every idle worker wakes for each connection and the last woken tends to take
    them all), and the gRPC door does the same (grpc.so_reuseport), so both doors behave alike.
    The price: a worker that dies drops the connections waiting in its own queue, not yet accepted."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"FRIDAY_HTTP_HOST={host!r} does not resolve ({exc.strerror}); use an address such as 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host in ("::", "") else 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen for HTTP on {host}:{port}: {exc.strerror}. Is the port taken? Set FRIDAY_HTTP_PORT / FRIDAY_HTTP_HOST"
        ) from None
    sock.set_inheritable(True)
    return sock


async def _start_grpc(runtime: Runtime, settings: Settings, reuse_port: bool = False) -> Any:
    from .grpc_api.server import start_grpc_server  # imported here: grpc loads only for `serve`

    return await start_grpc_server(runtime, settings, reuse_port=reuse_port)


def _listen_line(settings: Settings, http_port: int, grpc_server: Any | None, workers: int = 1) -> str:
    scheme = "https" if settings.tls_cert_file else "http"
    host = settings.http_host
    shown_host = f"[{host}]" if ":" in host else host
    parts = [f"HTTP on {scheme}://{shown_host}:{http_port}"]
    if grpc_server is not None:
        gport = getattr(grpc_server, "port", settings.grpc_port)
        ghost = f"[{settings.grpc_host}]" if ":" in settings.grpc_host else settings.grpc_host
        parts.append(f"gRPC on {ghost}:{gport}" + (" (TLS)" if settings.tls_cert_file else ""))
    if settings.redis_url is None:
        parts.append(f"Redis embedded ({settings.data_dir}/)")
    else:
        parts.append(f"Redis {redact_url(settings.redis_url)}")
    if workers > 1:
        parts.append(f"{workers} workers")
    return "friday: " + ", ".join(parts)


def _tune_gc() -> None:
    """Start-up objects (modules, app, schemas) never die: move them out of the collector's sight,
    and collect the young generation less often, so full collections stay short and rare (they made
    the publish latency tail)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def check_start(settings: Settings) -> ApiKeys:
    """What fails before anything starts: the API keys, the bind security, the TLS files."""
    keys = ApiKeys.from_settings(settings)
    check_bind_security(settings, keys)
    if settings.tls_cert_file is not None:
        for name, path in (("FRIDAY_TLS_CERT_FILE", settings.tls_cert_file), ("FRIDAY_TLS_KEY_FILE", settings.tls_key_file)):
            if path is None or not path.is_file():
                raise ConfigError(f"{name}={path} is not a readable file; point it to a PEM file")
    return keys


async def serve(settings: Settings, worker: WorkerRole | None = None) -> None:
    """Run the sidecar until SIGTERM/SIGINT, then shut down gracefully. Raises ConfigError on bad settings.

    ``worker``: run as one worker of a FRIDAY_WORKERS supervisor (see the module docstring)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = check_start(settings)
    grace = max(0.0, settings.shutdown_grace_s)
    # before Redis: a taken port fails fast
    http_sock = _bind(settings.http_host, settings.http_port, reuse_port=worker is not None)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals_seen = 0
    server: _Server | None = None

    def on_signal(sig: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            log.info("%s received: shutting down (grace %.1f s)", signal.Signals(sig).name, grace)
            stop.set()
        else:
            log.warning("second signal: forcing the shutdown")
            if server is not None:
                server.force_exit = True

    installed: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)

    runtime = Runtime(settings, observer=PrometheusObserver(multiprocess=worker is not None))
    lifecycle = Lifecycle()
    grpc_server: Any | None = None
    http_task: asyncio.Task[None] | None = None
    try:
        try:
            if worker is None:
                await runtime.start()
            else:  # the supervisor runs the embedded Redis, the setup and the loops
                await runtime.start(run_setup=False, loops=False, refresh_loop=True)
        except FridayError as exc:  # e.g. Redis unreachable at start: say it plainly, exit non-zero
            raise ConfigError(f"cannot start: {exc.message}") from None
        grpc_server = await _start_grpc(runtime, settings, reuse_port=worker is not None)
        app = create_app(runtime, keys=keys, lifecycle=lifecycle)
        config = uvicorn.Config(
            app, lifespan="off", log_config=None, access_log=True, server_header=False, proxy_headers=False,
            ssl_certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
            ssl_keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
            timeout_graceful_shutdown=max(0.1, grace), timeout_keep_alive=5,
        )
        server = _Server(config)
        http_task = asyncio.create_task(server.serve(sockets=[http_sock]), name="friday-http")
        while not server.started and not http_task.done():
            await asyncio.sleep(0.02)
        _tune_gc()
        if http_task.done():
            http_task.result()  # raise what stopped it
            raise ConfigError("the HTTP server stopped during start-up")
        if worker is None:
            print(_listen_line(settings, http_sock.getsockname()[1], grpc_server), flush=True)
        else:
            os.write(worker.ready_fd, READY_WORD)
            os.close(worker.ready_fd)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({stopped, http_task}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if http_task.done() and not stop.is_set():
            log.error("the HTTP server stopped unexpectedly")
    finally:
        await _shutdown(lifecycle, server, http_task, grpc_server, runtime, grace)
        http_sock.close()
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
    if http_task is not None and http_task.done() and not http_task.cancelled() and http_task.exception() is not None:
        raise http_task.exception()  # type: ignore[misc]


async def _shutdown(lifecycle: Lifecycle, server: _Server | None, http_task: asyncio.Task[None] | None,
                    grpc_server: Any | None, runtime: Runtime, grace: float) -> None:
    lifecycle.begin_shutdown()  # SSE streams end, waiting long polls answer 503
    if server is not None:
        server.should_exit = True
    waits: list[Any] = []
    if grpc_server is not None:
        waits.append(grpc_server.stop(grace))
    if http_task is not None and not http_task.done():
        waits.append(asyncio.shield(http_task))
    if waits:
        try:
            await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), grace + STOP_MARGIN_S)
        except TimeoutError:
            log.error("shutdown grace exceeded: stopping anyway")
            if server is not None:
                server.force_exit = True
            if http_task is not None and not http_task.done():
                http_task.cancel()
                with contextlib.suppress(BaseException):
                    await http_task
    try:
        await runtime.stop()
    except Exception:
        log.exception("error while stopping the runtime")
    log.info("stopped")


def run(settings: Settings, worker: WorkerRole | None = None) -> None:
    """Blocking entry point for ``friday serve`` (FRIDAY_WORKERS=1), and for each worker of the supervisor.
    With FRIDAY_WORKERS > 1 and no ``worker``: the supervisor (what ``friday serve`` runs then)."""
    if worker is None and settings.workers > 1:
        from .workers import supervise

        supervise(settings)
        return
    try:
        asyncio.run(serve(settings, worker))
    except KeyboardInterrupt:  # a signal before the handlers were installed
        sys.exit(130)
