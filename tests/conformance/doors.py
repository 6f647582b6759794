"""The two doors of the sidecar behind one small interface, so that one scenario suite runs
through both: :class:`GrpcDoor` (the Python client) and :class:`HttpDoor` (httpx, following
docs/http-api.md). Nothing here knows about Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from friday_bus_client import FridayClient, Subscription

WAIT_S = 30.0  # a bound on waiting for something that must happen, never a timing assertion


@dataclass
class Got:
    """One delivery, as either door hands it over."""

    id: str
    payload: dict[str, Any]
    delivery_count: int
    consumer: str
    meta: dict[str, Any]
    handle: Any = field(default=None, repr=False)


class Consumer:
    async def take(self, n: int) -> list[Got]:
        """Wait for the next ``n`` deliveries (not acked)."""
        raise NotImplementedError

    async def ack(self, got: Got) -> None:
        raise NotImplementedError

    async def nack(self, got: Got, reason: str) -> str:
        """Returns the outcome: ``retry`` or ``dead_lettered``."""
        raise NotImplementedError

    async def leave(self) -> None:
        """Go away without acking anything."""


class Door:
    name = "?"

    async def publish(self, stream: str, payload: dict[str, Any], **meta: Any) -> str:
        raise NotImplementedError

    async def publish_info(self, channel: str, payload: dict[str, Any]) -> int:
        raise NotImplementedError

    async def create_group(self, stream: str, group: str, start: str = "new") -> bool:
        raise NotImplementedError

    def consumer(self, stream: str, group: str, name: str, max_in_flight: int = 10) -> Consumer:
        raise NotImplementedError

    async def pending(self, stream: str, group: str) -> int:
        raise NotImplementedError

    async def dead_letters(self, stream: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def listen(self, channel: str) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[dict[str, Any]]]:
        raise NotImplementedError

    async def close(self) -> None: ...


# ------------------------------------------------------------------------------ gRPC


class GrpcConsumer(Consumer):
    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self._it = sub

    async def take(self, n: int) -> list[Got]:
        out = []
        for _ in range(n):
            d = await asyncio.wait_for(self._it.__anext__(), WAIT_S)
            meta = {"event_id": d.metadata.event_id, "source": d.metadata.source, "correlation_id": d.metadata.correlation_id}
            out.append(Got(d.id, d.payload, d.delivery_count, d.consumer, meta, d))
        return out

    async def ack(self, got: Got) -> None:
        await got.handle.ack()

    async def nack(self, got: Got, reason: str) -> str:
        return (await got.handle.nack(reason)).outcome

    async def leave(self) -> None:
        await self.sub.close()


class GrpcDoor(Door):
    name = "grpc"

    def __init__(self, target: str, api_key: str | None) -> None:
        self.client = FridayClient(target, api_key=api_key)
        self._consumers: list[GrpcConsumer] = []

    async def publish(self, stream: str, payload: dict[str, Any], **meta: Any) -> str:
        r = await self.client.publish(stream, payload, **meta)
        assert r.entry_id
        return r.entry_id

    async def publish_info(self, channel: str, payload: dict[str, Any]) -> int:
        return int((await self.client.publish_info(channel, payload)).receivers or 0)

    async def create_group(self, stream: str, group: str, start: str = "new") -> bool:
        return await self.client.create_group(stream, group, start)

    def consumer(self, stream: str, group: str, name: str, max_in_flight: int = 10) -> Consumer:
        c = GrpcConsumer(self.client.subscribe(stream, group, name, max_in_flight=max_in_flight))
        self._consumers.append(c)
        return c

    async def pending(self, stream: str, group: str) -> int:
        [st] = (await self.client.status([stream])).streams
        return sum(g.pending for g in st.groups if g.name == group)

    async def dead_letters(self, stream: str) -> list[dict[str, Any]]:
        return [
            {"original_id": d.original_id, "group": d.group, "reason": d.reason, "payload": d.payload,
             "delivery_count": d.delivery_count}
            for d in await self.client.list_dead_letters(stream)
        ]

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def pump() -> None:
            async for m in self.client.subscribe_channel(channel):
                await q.put(m.payload)

        task = asyncio.create_task(pump())
        try:
            yield q
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def close(self) -> None:
        for c in self._consumers:
            await c.leave()
        await self.client.close()


# ------------------------------------------------------------------------------ HTTP


class HttpConsumer(Consumer):
    def __init__(self, http: httpx.AsyncClient, stream: str, group: str, name: str, max_in_flight: int) -> None:
        self.http, self.stream, self.group, self.name = http, stream, group, name
        self.batch = max_in_flight
        self.base = f"/api/v1/streams/{stream}/groups/{group}"

    async def take(self, n: int) -> list[Got]:
        out: list[Got] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while len(out) < n:
            assert loop.time() < deadline, f"{self.name} waited too long for {n} deliveries (got {len(out)})"
            r = await self.http.post(f"{self.base}/read", json={"consumer": self.name, "count": n - len(out), "block_ms": 1000})
            assert r.status_code == 200, r.text
            for d in r.json()["deliveries"]:
                m = d["metadata"]
                meta = {"event_id": m.get("event_id"), "source": m.get("source"), "correlation_id": m.get("correlation_id")}
                out.append(Got(d["id"], d["payload"], d["delivery_count"], d["consumer"], meta, d))
        return out

    async def ack(self, got: Got) -> None:
        r = await self.http.post(f"{self.base}/ack", json={"ids": [got.id]})
        assert r.status_code == 200 and r.json()["acked"] == 1, r.text

    async def nack(self, got: Got, reason: str) -> str:
        r = await self.http.post(f"{self.base}/nack", json={"id": got.id, "reason": reason})
        assert r.status_code == 200, r.text
        return str(r.json()["outcome"])


class HttpDoor(Door):
    name = "http"

    def __init__(self, base_url: str, api_key: str | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=WAIT_S + 10)

    async def publish(self, stream: str, payload: dict[str, Any], **meta: Any) -> str:
        r = await self.http.post("/api/v1/events/publish", json={"stream": stream, "payload": payload, **meta})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    async def publish_info(self, channel: str, payload: dict[str, Any]) -> int:
        r = await self.http.post("/api/v1/events/publish", json={"stream": channel, "payload": payload})
        assert r.status_code == 200 and r.json()["kind"] == "channel", r.text
        return int(r.json()["receivers"])

    async def create_group(self, stream: str, group: str, start: str = "new") -> bool:
        r = await self.http.post(f"/api/v1/streams/{stream}/groups", json={"group": group, "start": start})
        assert r.status_code in (200, 201), r.text
        return bool(r.json()["created"])

    def consumer(self, stream: str, group: str, name: str, max_in_flight: int = 10) -> Consumer:
        return HttpConsumer(self.http, stream, group, name, max_in_flight)

    async def pending(self, stream: str, group: str) -> int:
        r = await self.http.get(f"/api/v1/streams/{stream}/status")
        assert r.status_code == 200, r.text
        return sum(g["pending"] for g in r.json()["groups"] if g["name"] == group)

    async def dead_letters(self, stream: str) -> list[dict[str, Any]]:
        r = await self.http.get(f"/api/v1/streams/{stream}/dlq")
        assert r.status_code == 200, r.text
        return [
            {k: e[k] for k in ("original_id", "group", "reason", "payload", "delivery_count")} for e in r.json()["entries"]
        ]

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def pump() -> None:
            async with self.http.stream("GET", f"/api/v1/channels/{channel}/subscribe", timeout=None) as r:
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        await q.put(json.loads(line[5:].strip())["payload"])

        task = asyncio.create_task(pump())
        try:
            yield q
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def close(self) -> None:
        await self.http.aclose()


def make_door(kind: str, sidecar: Any) -> Door:
    if kind == "grpc":
        return GrpcDoor(sidecar.grpc_target, sidecar.api_key)
    return HttpDoor(sidecar.http_url, sidecar.api_key)
