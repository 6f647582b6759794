"""What counts as a delivery, over HTTP (issue 12, section 1): the release route gives back deliveries
never handed to a handler, and a long poll whose client left after its read took entries releases them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from friday_bus.core import EventBus, PublishRequest, Runtime, Settings, build_topology
from friday_bus.core.limits import MAX_ACK_IDS
from friday_bus.http_api import create_app

from .helpers import assert_error


def publish(api, stream, payload) -> str:
    r = api.post("/api/v1/events/publish", json={"stream": stream, "payload": payload})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def read(api, stream, consumer, **kw) -> list[dict[str, Any]]:
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": consumer, **kw})
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def pending(rds, stream) -> dict[str, tuple[str, int]]:
    """entry id -> (owner, delivery count) of every pending entry of group ``workers``."""
    return {p["message_id"]: (p["consumer"], p["times_delivered"]) for p in rds.xpending_range(stream, "workers", "-", "+", 100)}


def release_path(stream, group="workers") -> str:
    return f"/api/v1/streams/{stream}/groups/{group}/release"


def test_release_gives_back_at_once_with_the_count_as_it_was(api, rds, stream):
    first, second = publish(api, stream, {"n": 1}), publish(api, stream, {"n": 2})
    assert [(d["id"], d["delivery_count"]) for d in read(api, stream, "w1", count=10)] == [(first, 1), (second, 1)]
    body = {"consumer": "w1", "deliveries": [{"id": first, "delivery_count": 1}, {"id": second, "delivery_count": 2}]}
    r = api.post(release_path(stream), json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"released": 1}  # the second named a count it was not read with: skipped
    assert pending(rds, stream) == {first: ("w1", 0), second: ("w1", 1)}
    # whoever reads next gets it at once, with the count it had
    got = [d for d in read(api, stream, "w2", count=10) if d["id"] == first]
    assert [(d["id"], d["delivery_count"], d["consumer"]) for d in got] == [(first, 1, "w2")]
    # released again by w1 (no longer its delivery): nothing happens
    again = api.post(release_path(stream), json={"consumer": "w1", "deliveries": [{"id": first, "delivery_count": 1}]})
    assert again.status_code == 200 and again.json() == {"released": 0}
    assert pending(rds, stream)[first] == ("w2", 1)


@pytest.mark.parametrize("body", [
    None,
    {},
    {"consumer": "w1"},
    {"consumer": "w1", "deliveries": []},
    {"consumer": "w1", "deliveries": [{"id": "ID", "delivery_count": 1}] * (MAX_ACK_IDS + 1)},
    {"consumer": "w1", "deliveries": ["ID"]},
    {"consumer": "w1", "deliveries": [{"id": "ID"}]},
    {"consumer": "w1", "deliveries": [{"id": "$", "delivery_count": 1}]},
    {"consumer": "w1", "deliveries": [{"id": "ID", "delivery_count": 0}]},
    {"consumer": "w1", "deliveries": [{"id": "ID", "delivery_count": "1"}]},
    {"consumer": "w1", "deliveries": [{"id": "ID", "delivery_count": True}]},
    {"consumer": "w1", "deliveries": [{"id": "ID", "delivery_count": 1.5}]},
    {"consumer": "w1", "deliveries": [{"id": "ID", "delivery_count": 2**53}]},
    {"consumer": "w1", "deliveries": [{"id": "ID", "delivery_count": 1, "extra": 1}]},
    {"consumer": "w1", "deliveries": [{"id": "ID", "delivery_count": 1}], "ids": ["ID"]},
    {"consumer": "bad consumer", "deliveries": [{"id": "ID", "delivery_count": 1}]},
    {"consumer": 7, "deliveries": [{"id": "ID", "delivery_count": 1}]},
])
def test_bad_release_bodies_are_400_and_release_nothing(api, rds, stream, body):
    eid = publish(api, stream, {"n": 1})
    read(api, stream, "w1")
    if body is not None:
        body = json.loads(json.dumps(body).replace('"ID"', json.dumps(eid)))
    r = api.post(release_path(stream), json=body) if body is not None else api.post(release_path(stream))
    assert_error(r, 400, "invalid_argument")
    assert pending(rds, stream) == {eid: ("w1", 1)}


def test_release_on_an_unknown_group_is_404(api, stream):
    eid = publish(api, stream, {"n": 1})
    r = api.post(release_path(stream, "nope"), json={"consumer": "w1", "deliveries": [{"id": eid, "delivery_count": 1}]})
    assert_error(r, 404, "not_found", "group")


# ---------------------------------------------------------------- long poll abandoned after its read
@pytest.fixture
async def app_runtime(redis_server, uniq) -> AsyncIterator[tuple[Any, Runtime]]:
    """The HTTP app in process over a started Runtime on the test Redis; nothing reclaimed by idle time."""
    settings = Settings(_env_file=None, redis_url=redis_server.url, key_prefix=f"friday:{uniq}:", api_keys="k",
                        allow_unknown_streams=True, claim_idle_ms=600_000)
    runtime = Runtime(settings, build_topology(settings, {"streams": {f"{uniq}.events": ["workers"]}, "channels": []}))
    await runtime.start(loops=False)
    yield create_app(runtime), runtime
    await runtime.stop()


async def test_a_long_poll_whose_client_left_after_the_read_releases_what_it_took(app_runtime, uniq, monkeypatch):
    app, runtime = app_runtime
    bus = runtime.bus
    s = f"{uniq}.events"
    await bus.setup()
    eid = (await bus.publish(PublishRequest(s, {"n": 1}))).entry_id
    # The read takes the entry from Redis; the client is gone by the time it returns.
    read_done = asyncio.Event()
    real_read = EventBus.read

    async def read_then_client_leaves(self, *args, **kwargs):
        out = await real_read(self, *args, **kwargs)
        read_done.set()
        return out

    monkeypatch.setattr(EventBus, "read", read_then_client_leaves)
    body = json.dumps({"consumer": "gone", "count": 10, "block_ms": 5000}).encode()
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await read_done.wait()
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = f"/api/v1/streams/{s}/groups/workers/read"
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"), (b"authorization", b"Bearer k"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    assert read_done.is_set()
    answered = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert eid.encode() not in answered  # nobody got it...
    monkeypatch.undo()
    # ...so it was released: the next reader gets it at once with delivery count 1
    [d] = await bus.read(s, "workers", "next", count=10, block_ms=0)
    assert (d.entry_id, d.delivery_count) == (eid, 1)


async def test_a_long_poll_whose_client_left_during_the_wait_gives_back_what_its_read_takes(redis_server, uniq):
    """The client leaves while the read waits in Redis and an event is published right then: the
    waiting Redis command is not cancelled (its answer, with the event in it, would be lost and the
    event left pending, to be reclaimed with count 2); what it takes is given back, so the next
    reader gets it at once with delivery count 1."""
    settings = Settings(_env_file=None, redis_url=redis_server.url, key_prefix=f"friday:{uniq}:", api_keys="k",
                        allow_unknown_streams=True, claim_idle_ms=600_000, claim_interval_ms=5_000)
    runtime = Runtime(settings, build_topology(settings, {"streams": {f"{uniq}.events": ["workers"]}, "channels": []}))
    await runtime.start(loops=False)
    try:
        app, bus = create_app(runtime), runtime.bus
        s = f"{uniq}.events"
        await bus.setup()
        await bus.read(s, "workers", "other", count=1)  # the group exists and was claimed once: no claim for 5 s
        body = json.dumps({"consumer": "gone", "count": 10, "block_ms": 20_000}).encode()
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        leave = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await leave.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            pass

        path = f"/api/v1/streams/{s}/groups/workers/read"
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"test"), (b"content-type", b"application/json"), (b"authorization", b"Bearer k"),
                        (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 50001), "server": ("127.0.0.1", 8000),
        }
        poll = asyncio.create_task(app(scope, receive, send))

        async def blocked_reads() -> int:
            return sum(1 for c in await bus.redis.client_list() if c.get("cmd") == "xreadgroup" and "b" in c.get("flags", ""))

        for _ in range(1000):
            if await blocked_reads():
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the long poll never waited in Redis")
        leave.set()  # the client leaves, and an event is published right then: the waiting read takes it
        eid = (await bus.publish(PublishRequest(s, {"n": 1}))).entry_id
        await asyncio.wait_for(poll, 10)  # the request is over: nobody received anything
        await bus.wait_released(10)
        [d] = await bus.read(s, "workers", "next", count=10, block_ms=0)
        assert (d.entry_id, d.delivery_count) == (eid, 1)
    finally:
        await runtime.stop()
