"""Start the gRPC door: the EventBus service, health checking and reflection, on one port.

``start_grpc_server`` returns a started :class:`grpc.aio.Server`. Its ``stop(grace)`` first
stops deliveries (Subscribe calls keep taking acks for up to ``grace`` seconds, then end
with UNAVAILABLE so clients reconnect) and turns health to NOT_SERVING, then stops the
server as gRPC does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import grpc
from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from ..auth import ApiKeys
from ..core import Runtime, Settings
from ..core.bus import RELEASE_DRAIN_S
from ..core.errors import ConfigError, FridayError
from .interceptors import SERVICE, AuthInterceptor, ErrorInterceptor
from .servicer import EventBusServicer

log = logging.getLogger("friday.grpc")

HEALTH_POLL_S = 1.0
MIN_RECEIVE_BYTES = 16 * 1024 * 1024

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _Health(HealthServicer):
    """Health of "" and the EventBus service, decided by :meth:`Runtime.check_ready` (the
    decision HTTP ``/readyz`` makes too): SERVING while it answers, NOT_SERVING (the reason
    logged once) while it raises - including while the runtime is not ``ready``."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self._current: Any = None

    async def refresh(self) -> None:
        try:
            await self.runtime.check_ready()
        except FridayError as exc:
            status, reason = NOT_SERVING, exc.message
        else:
            status, reason = SERVING, ""
        if status != self._current:
            if status == NOT_SERVING and self._current is not None:
                log.warning("gRPC health: NOT_SERVING: %s", reason)
            self._current = status
            for service in ("", SERVICE):
                await self.set(service, status)

    async def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext) -> Any:
        await self.refresh()
        return await super().Check(request, context)

    async def poll(self) -> None:
        """Refresh every HEALTH_POLL_S (``start`` has just refreshed), for Watch callers."""
        while True:
            await asyncio.sleep(HEALTH_POLL_S)
            try:
                await self.refresh()
            except Exception:  # a bug in one check must not stop the polling
                log.exception("gRPC health check failed")


class FridayGrpcServer(grpc.aio.Server):
    """The started gRPC server (delegates to grpc's); ``port`` is the bound port."""

    def __init__(self, inner: grpc.aio.Server, servicer: EventBusServicer, health: _Health, port: int) -> None:
        self._inner = inner
        self.servicer = servicer
        self.health = health
        self.port = port
        self._health_task: asyncio.Task[None] | None = None

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._inner.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        self._inner.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        return self._inner.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._inner.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._inner.start()
        await self.health.refresh()
        self._health_task = asyncio.create_task(self.health.poll(), name="friday-grpc-health")

    async def stop(self, grace: float | None) -> None:
        self.servicer.begin_shutdown()
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(BaseException):
                await self._health_task
            self._health_task = None
        await self.health.enter_graceful_shutdown()
        await self._inner.stop(grace)
        bus = self.servicer.runtime.bus
        if bus is not None:  # reads the calls left running end within their block time: given back first
            await bus.wait_released(RELEASE_DRAIN_S)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return await self._inner.wait_for_termination(timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    return f"{host}:{port}"


def _read(path: Any, env: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {env}={path}: {exc.strerror}; point it to a readable PEM file") from None


async def start_grpc_server(runtime: Runtime, settings: Settings, *, reuse_port: bool = False) -> grpc.aio.Server:
    """Build, bind and start the gRPC server. Raises ConfigError when it cannot bind or read TLS files.

    ``reuse_port``: bind with SO_REUSEPORT, so that the workers of FRIDAY_WORKERS > 1 share the
    port (the kernel spreads new connections over them). Off otherwise: a port another process
    holds then fails the start instead of being shared with it silently.
    """
    keys = ApiKeys.parse(settings.api_keys)
    receive = max(MIN_RECEIVE_BYTES, 2 * settings.max_payload_bytes + 1024 * 1024)
    inner = grpc.aio.server(
        interceptors=[AuthInterceptor(keys), ErrorInterceptor()],
        options=[
            ("grpc.max_receive_message_length", receive),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ],
    )
    servicer = EventBusServicer(runtime)
    health = _Health(runtime)
    pb_grpc.add_EventBusServicer_to_server(servicer, inner)
    health_pb2_grpc.add_HealthServicer_to_server(health, inner)
    reflection.enable_server_reflection([SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                                         reflection.SERVICE_NAME], inner)
    address = _address(settings.grpc_host, settings.grpc_port)
    try:
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            cert = _read(settings.tls_cert_file, "FRIDAY_TLS_CERT_FILE")
            key = _read(settings.tls_key_file, "FRIDAY_TLS_KEY_FILE")
            port = inner.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
        else:
            port = inner.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(
            f"cannot listen for gRPC on {address}: {exc}. Is the port taken? Set FRIDAY_GRPC_PORT / FRIDAY_GRPC_HOST"
        ) from None
    if port == 0:
        raise ConfigError(f"cannot listen for gRPC on {address}. Is the port taken? Set FRIDAY_GRPC_PORT / FRIDAY_GRPC_HOST")
    server = FridayGrpcServer(inner, servicer, health, port)
    await server.start()
    log.info("gRPC listening on %s (%s, auth %s)", _address(settings.grpc_host, port),
             "TLS" if settings.tls_cert_file else "plaintext", "on" if keys.enabled else "off")
    return server
