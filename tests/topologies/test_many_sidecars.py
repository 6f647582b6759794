"""Many sidecars on one Redis (and on the cluster) share consumer groups (issue 8, section 4).

Each sidecar here is a real `friday serve` process; they share FRIDAY_KEY_PREFIX (one
installation, several processes), each has its own ports and API key.

* exactly once: N events published through every sidecar, consumed through both doors of every
  sidecar, acked: every event delivered and acked exactly once (claim idle 10 min, so that any
  second delivery would be a bug, not a slow ack being reclaimed);
* kill -9: a sidecar holding unacked deliveries (gRPC and HTTP consumers) is SIGKILLed; after
  claim idle (1 s) the other sidecar's consumers get them, with their delivery count raised,
  and new events keep flowing; nothing is lost and nothing acked is delivered again.

Deliveries are counted per event and per sidecar (printed). Sidecars start in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conformance.doors import GrpcDoor, HttpDoor
from tests.sidecar_fixture import Sidecar, launch_sidecar, wait_until_ready

WAIT_S = 60.0
TOPOLOGIES = ["redis", "cluster"]


@pytest.fixture(params=TOPOLOGIES)
def where(request: pytest.FixtureRequest) -> tuple[str, str, dict[str, str]]:
    """(name, url, FRIDAY_* env) of the Redis the sidecars share."""
    if request.param == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        return "cluster", cluster.url, cluster.env()
    server = request.getfixturevalue("redis_server")
    return "redis", server.url, {"FRIDAY_REDIS_MODE": "standalone"}


@pytest.fixture
def sidecars(where: tuple[str, str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Callable[..., list[Sidecar]]]:
    """``sidecars(n, **env)``: n sidecars on the shared Redis, one key prefix, started in parallel."""
    started: list[Sidecar] = []
    prefix = f"friday:{uuid.uuid4().hex[:8]}:"

    def start(n: int, **env: str) -> list[Sidecar]:
        _, url, base = where
        cars = [launch_sidecar(tmp_path_factory.mktemp("many"), url, {**base, "FRIDAY_KEY_PREFIX": prefix, **env},
                               wait_ready=False) for _ in range(n)]
        started.extend(cars)
        for car in cars:
            wait_until_ready(car)
        return cars

    yield start
    for car in started:
        car.stop()


def stream_name() -> str:
    return f"many.{uuid.uuid4().hex[:8]}"


class Ledger:
    """Every delivery, by event id: which consumer (sidecar/door) got it, its count, whether acked."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.deliveries: list[tuple[str, str, int]] = []  # (id, consumer, delivery_count)
        self.acked: Counter[str] = Counter()
        self.done = asyncio.Event()

    def got(self, entry_id: str, who: str, count: int) -> None:
        self.deliveries.append((entry_id, who, count))

    def ack(self, entry_id: str) -> None:
        self.acked[entry_id] += 1
        if len(self.acked) >= self.expected:
            self.done.set()

    def per_consumer(self) -> Counter[str]:
        return Counter(w for _, w, _ in self.deliveries)


async def grpc_worker(car: Sidecar, label: str, stream: str, group: str, ledger: Ledger, *,
                      ack: bool = True, max_in_flight: int = 5) -> None:
    """Consume through the gRPC door until the ledger is complete (acking each delivery)."""
    door = GrpcDoor(car.grpc_target, car.api_key)
    sub = door.client.subscribe(stream, group, label, max_in_flight=max_in_flight)
    it = sub.__aiter__()
    try:
        while not ledger.done.is_set():
            try:
                d = await asyncio.wait_for(it.__anext__(), 0.5)
            except TimeoutError:
                continue
            ledger.got(d.id, label, d.delivery_count)
            if ack:
                await d.ack()
                ledger.ack(d.id)
    finally:
        with contextlib.suppress(Exception):
            await door.close()


async def http_worker(car: Sidecar, label: str, stream: str, group: str, ledger: Ledger, *, count: int = 5) -> None:
    """Consume through the HTTP door (read with a short block, ack the batch) until complete.
    Reads are never cancelled half-way, so no delivery is lost between the sidecar and here."""
    async with httpx.AsyncClient(base_url=car.http_url, headers=car.headers(), timeout=30) as http:
        base = f"/api/v1/streams/{stream}/groups/{group}"
        while not ledger.done.is_set():
            r = await http.post(f"{base}/read", json={"consumer": label, "count": count, "block_ms": 300})
            assert r.status_code == 200, r.text
            batch = r.json()["deliveries"]
            for d in batch:
                ledger.got(d["id"], label, d["delivery_count"])
            if batch:
                r = await http.post(f"{base}/ack", json={"ids": [d["id"] for d in batch]})
                assert r.status_code == 200 and r.json()["acked"] == len(batch), r.text
                for d in batch:
                    ledger.ack(d["id"])


async def http_take(car: Sidecar, stream: str, group: str, consumer: str, n: int) -> list[dict[str, Any]]:
    """Read ``n`` deliveries through the HTTP door without acking."""
    out: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=car.http_url, headers=car.headers(), timeout=30) as http:
        while len(out) < n:
            r = await http.post(f"/api/v1/streams/{stream}/groups/{group}/read",
                                json={"consumer": consumer, "count": n - len(out), "block_ms": 1000})
            assert r.status_code == 200, r.text
            out += r.json()["deliveries"]
    return out


async def pending(car: Sidecar, stream: str, group: str) -> int:
    door = HttpDoor(car.http_url, car.api_key)
    try:
        return await door.pending(stream, group)
    finally:
        await door.close()


async def publish_all(cars: list[Sidecar], stream: str, n: int) -> list[str]:
    """``n`` events, spread over the sidecars and over both doors (gRPC batches, HTTP singles)."""
    ids: list[str] = []
    doors = [GrpcDoor(c.grpc_target, c.api_key) for c in cars]
    try:
        async with contextlib.AsyncExitStack() as stack:
            https = [await stack.enter_async_context(httpx.AsyncClient(base_url=c.http_url, headers=c.headers(), timeout=30))
                     for c in cars]
            i = 0
            while i < n:
                k = i // 20 % len(cars)
                if i // 20 % 2 == 0:
                    rs = await doors[k].client.publish_batch([{"stream": stream, "payload": {"n": j}} for j in range(i, min(n, i + 20))])
                    ids += [r.entry_id for r in rs]
                else:
                    for j in range(i, min(n, i + 20)):
                        r = await https[k].post("/api/v1/events/publish", json={"stream": stream, "payload": {"n": j}})
                        assert r.status_code == 200, r.text
                        ids.append(r.json()["id"])
                i = len(ids)
    finally:
        for d in doors:
            await d.close()
    assert len(set(ids)) == n
    return ids


async def create_group(car: Sidecar, stream: str, group: str) -> None:
    door = HttpDoor(car.http_url, car.api_key)
    try:
        assert await door.create_group(stream, group, "new") is True
    finally:
        await door.close()


# ------------------------------------------------------------------------------ tests


async def test_sidecars_share_a_group_every_event_acked_exactly_once(where, sidecars):
    name = where[0]
    cars = sidecars(3 if name == "redis" else 2, FRIDAY_CLAIM_IDLE_MS="600000")
    stream, group, n = stream_name(), "workers", 400
    await create_group(cars[0], stream, group)
    ledger = Ledger(n)
    workers = []
    for i, car in enumerate(cars):
        workers.append(asyncio.create_task(grpc_worker(car, f"car{i}-grpc", stream, group, ledger)))
        workers.append(asyncio.create_task(http_worker(car, f"car{i}-http", stream, group, ledger)))
    ids = await publish_all(cars, stream, n)  # consumers run while it publishes
    await asyncio.wait_for(ledger.done.wait(), WAIT_S)
    await asyncio.wait_for(asyncio.gather(*workers), WAIT_S)

    per_event = Counter(i for i, _, _ in ledger.deliveries)
    print(f"\n[many-sidecars {name}] {len(cars)} sidecars, {n} events: deliveries per consumer "
          f"{dict(sorted(ledger.per_consumer().items()))}; delivered twice: {sum(1 for c in per_event.values() if c > 1)}")
    assert sorted(per_event) == sorted(ids), "an event was never delivered, or an unknown id was"
    assert [i for i, c in per_event.items() if c != 1] == [], "an event was delivered more than once"
    assert [i for i, c in ledger.acked.items() if c != 1] == [] and len(ledger.acked) == n
    assert {d for _, _, d in ledger.deliveries} == {1}
    assert len({w.split("-")[0] for w in ledger.per_consumer()}) >= 2, "only one sidecar delivered anything"
    assert await pending(cars[-1], stream, group) == 0


async def test_deliveries_of_a_killed_sidecar_are_reclaimed_through_another(where, sidecars):
    name = where[0]
    victim, heir = sidecars(2, FRIDAY_CLAIM_IDLE_MS="5000")  # well above a loaded machine's pauses between reads
    stream, group = stream_name(), "workers"
    await create_group(heir, stream, group)
    first = await publish_all([victim], stream, 20)

    # the victim's consumers hold all 20 without acking: 10 pushed to a gRPC subscriber, 10 read over HTTP
    held = GrpcDoor(victim.grpc_target, victim.api_key)
    sub = held.client.subscribe(stream, group, "victim-grpc", max_in_flight=10)
    it = sub.__aiter__()
    grpc_held = [await asyncio.wait_for(it.__anext__(), WAIT_S) for _ in range(10)]
    http_held = await http_take(victim, stream, group, "victim-http", 10)
    held_ids = {d.id for d in grpc_held} | {d["id"] for d in http_held}
    assert held_ids == set(first)
    assert await pending(heir, stream, group) == 20

    victim.proc.kill()  # SIGKILL while its consumers hold 20 unacked deliveries
    victim.wait()
    with contextlib.suppress(Exception):
        await held.close()
    assert await pending(heir, stream, group) == 20, "a SIGKILLed sidecar must not ack anything"

    later = await publish_all([heir], stream, 10)
    ledger = Ledger(30)
    await asyncio.wait_for(asyncio.gather(
        grpc_worker(heir, "heir-grpc", stream, group, ledger),
        http_worker(heir, "heir-http", stream, group, ledger),
    ), WAIT_S)

    per_event = Counter(i for i, _, _ in ledger.deliveries)
    counts = {i: d for i, _, d in ledger.deliveries}
    print(f"\n[many-sidecars {name}] kill -9 with 20 unacked: heir deliveries per consumer "
          f"{dict(ledger.per_consumer())}, reclaimed with count 2: {sum(1 for i in first if counts.get(i) == 2)}/20")
    assert sorted(per_event) == sorted(first + later)
    assert [i for i, c in per_event.items() if c != 1] == [], "the heir got an event twice"
    assert all(counts[i] == 2 for i in first), "reclaimed deliveries carry their raised delivery count"
    assert all(counts[i] == 1 for i in later)
    assert await pending(heir, stream, group) == 0
