"""An in-process gRPC door (Runtime + start_grpc_server) on the test Redis, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from friday_bus.core import Runtime, Settings, build_topology
from friday_bus.grpc_api import start_grpc_server
from friday_bus_client import FridayClient

KEYS = "all-key,pub-key:publish,con-key:consume,adm-key:admin"
FAST = {"claim_interval_ms": 50}


@dataclass
class GrpcDoor:
    runtime: Runtime
    server: Any
    settings: Settings
    uniq: str
    clients: list[FridayClient] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    @property
    def bus(self):
        return self.runtime.bus

    def stream(self, name: str = "events") -> str:
        return f"{self.uniq}.{name}"

    def client(self, api_key: str | None = "all-key", **kw: Any) -> FridayClient:
        c = FridayClient(self.target, api_key=api_key, **kw)
        self.clients.append(c)
        return c

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.target)

    async def stop(self, grace: float | None = 0) -> None:
        await self.server.stop(grace)
        await self.runtime.stop()

    async def restart(self) -> None:
        """Stop and start again on the same port (a sidecar restart)."""
        port = self.server.port
        await self.stop()
        self.settings = self.settings.model_copy(update={"grpc_port": port})
        self.runtime = Runtime(self.settings, self.runtime.topology)
        await self.runtime.start(loops=False)
        self.server = await start_grpc_server(self.runtime, self.settings)


@pytest.fixture
async def start_door(redis_server, uniq) -> AsyncIterator[Callable[..., Any]]:
    doors: list[GrpcDoor] = []

    async def factory(streams: dict[str, Any] | None = None, channels: list[str] | None = None, **overrides: Any) -> GrpcDoor:
        values: dict[str, Any] = {
            "redis_url": redis_server.url,
            "key_prefix": f"friday:{uniq}:",
            "grpc_host": "127.0.0.1",
            "grpc_port": 0,
            "api_keys": KEYS,
            "allow_unknown_streams": True,
            **FAST,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        spec = streams if streams is not None else {"events": ["workers"]}
        data = {
            "streams": {f"{uniq}.{name}": v for name, v in spec.items()},
            "channels": [f"{uniq}.{c}" for c in (channels or ["info"])],
        }
        runtime = Runtime(settings, build_topology(settings, data))
        await runtime.start(loops=False)
        server = await start_grpc_server(runtime, settings)
        door = GrpcDoor(runtime, server, settings, uniq)
        doors.append(door)
        return door

    yield factory
    for d in doors:
        for c in d.clients:
            await c.close()
        await d.stop()


@pytest.fixture
async def door(start_door) -> GrpcDoor:
    return await start_door()


@pytest.fixture
async def stub(door: Any) -> AsyncIterator[Any]:
    """A raw EventBus stub on the door's channel (for requests the client would not send)."""
    from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc

    async with door.channel() as ch:
        yield pb_grpc.EventBusStub(ch)
