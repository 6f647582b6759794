"""What counts as a delivery, over gRPC (issue 12, section 1): deliveries never handed to the
application are released (redelivered at once with their count as it was); deliveries a consumer
really held when it went away still cost one delivery each."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from friday_bus.core import EventBus, PublishRequest
from friday_bus_client import FridayClient, InvalidArgument
from friday_bus_client._proto import eventbus_pb2 as pb
from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc

from .test_subscribe import MD, open_call, publish_many, read_ids, until

# Long enough that nothing is reclaimed by idle time within a test: only a release brings
# an entry back at once.
NEVER_IDLE_MS = 600_000


async def pending(bus, s: str, group: str = "workers") -> dict[str, tuple[str, int]]:
    """entry id -> (owner, delivery count) of every pending entry."""
    return {r["message_id"]: (r["consumer"], r["times_delivered"]) for r in await bus.redis.xpending_range(s, group, "-", "+", 1000)}


async def take(sub, n: int, ack: bool = True) -> list:
    """The next ``n`` deliveries of ``sub`` (bounded wait), acked unless ``ack`` is False."""
    got = []

    async def run() -> None:
        async for d in sub:
            got.append(d)
            if ack:
                await d.ack()
            if len(got) == n:
                return

    await asyncio.wait_for(run(), 15)
    return got


async def test_issue_reproduction_prefetched_events_are_not_dead_lettered(start_sidecar, uniq):
    """The issue's reproduction through the real sidecar and the real client: three times
    subscribe with max_in_flight=10, take one event, ack it, close, wait 0.7 s (beyond the claim
    idle time). The events the three subscribers prefetched and never handled are not blamed."""
    car = start_sidecar(FRIDAY_CLAIM_IDLE_MS=500, FRIDAY_MAX_DELIVERIES=3)
    s = f"{uniq}.issue12"
    async with FridayClient(car.grpc_target, api_key=car.api_key) as admin:
        assert await admin.create_group(s, "agents", "all")
        for i in range(5):
            await admin.publish(s, {"i": i})
    handled = []
    for _ in range(3):
        async with FridayClient(car.grpc_target, api_key=car.api_key) as c, \
                c.subscribe(s, "agents", "agent-1", max_in_flight=10) as sub:
            [d] = await take(sub, 1)
            handled.append((d.payload["i"], d.delivery_count))
        await asyncio.sleep(0.7)
    assert handled == [(0, 1), (1, 1), (2, 1)]
    async with FridayClient(car.grpc_target, api_key=car.api_key) as c:
        async with c.subscribe(s, "agents", "agent-1", max_in_flight=10) as sub:
            rest = await take(sub, 2)
        assert [(d.payload["i"], d.delivery_count) for d in rest] == [(3, 1), (4, 1)]
        assert await c.list_dead_letters(s) == []


async def test_close_releases_what_was_buffered_but_not_what_was_handed_out(start_door):
    d = await start_door(claim_idle_ms=NEVER_IDLE_MS)
    s = d.stream()
    first, *rest = await publish_many(d, s, 3)
    c = d.client()
    async with c.subscribe(s, "workers", "w1", max_in_flight=10) as sub:
        [held] = await take(sub, 1, ack=False)  # handed to the application, never settled
        await until(lambda: sub._queue.qsize() == 2, "the other two are buffered")
    assert held.id == first
    # Buffered, never handed out: given back at once, their count as it was.
    assert await pending(d.bus, s) == {first: ("w1", 1), **{i: ("w1", 0) for i in rest}}
    async with d.client().subscribe(s, "workers", "w2", max_in_flight=10) as other:
        got = await take(other, 2)
    assert [(x.id, x.delivery_count) for x in got] == [(i, 1) for i in rest]
    # The delivery the application received and did not settle stays pending (as for a crash).
    assert await pending(d.bus, s) == {first: ("w1", 1)}


async def test_a_crash_still_counts_and_a_release_does_not(start_door):
    """A raw client takes three deliveries and drops its connection: no release, no half-close.
    One of them is then given back by the unary Release: it comes back at once with count 1;
    the two it really held come back after the claim idle time with count 2."""
    d = await start_door(claim_idle_ms=300)
    s = d.stream()
    ids = await publish_many(d, s, 3)
    ch = d.channel()
    call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "doomed", 3)
    assert await read_ids(call, 3) == ids
    await ch.close()  # gone
    heir = d.client()
    assert await heir.release(s, "workers", "doomed", [(ids[0], 1)]) == 1
    async with heir.subscribe(s, "workers", "heir", max_in_flight=10) as sub:
        got = await take(sub, 3)
    assert {x.id: x.delivery_count for x in got} == {ids[0]: 1, ids[1]: 2, ids[2]: 2}


async def test_deliveries_never_written_are_released_by_the_sidecar(start_door):
    """The client stops reading (HTTP/2 flow control holds the sidecar's writes), then cancels:
    what the sidecar read for the call but could not write is released by the sidecar; what the
    client did receive stays pending (it could have handled it)."""
    d = await start_door(claim_idle_ms=NEVER_IDLE_MS)
    s = d.stream()
    pad = "x" * 300_000  # three deliveries per ~1 MiB message, far beyond the flow-control window
    ids = [r.entry_id for r in await d.bus.publish_batch([PublishRequest(s, {"i": i, "pad": pad}) for i in range(12)])]
    small_window = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 65536),
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(d.target, options=small_window) as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "slow", 12)
        received = [x.id for x in (await call.read()).deliveries.deliveries]
        assert 0 < len(received) < len(ids)
        call.cancel()
    never_written = [i for i in ids if i not in received]
    async with d.client().subscribe(s, "workers", "next", max_in_flight=20) as sub:
        got = await take(sub, len(never_written))
    assert [(x.id, x.delivery_count) for x in got] == [(i, 1) for i in never_written]
    assert await pending(d.bus, s) == {i: ("slow", 1) for i in received}


async def test_release_on_the_call(start_door):
    d = await start_door(claim_idle_ms=NEVER_IDLE_MS)
    s = d.stream()
    ids = await publish_many(d, s, 2)
    async with d.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "w1", 2)
        assert await read_ids(call, 2) == ids

        async def answer(ref: int, **release) -> pb.SubscribeReleaseResult:
            await call.write(pb.SubscribeRequest(release=pb.SubscribeRelease(ref=ref, **release)))
            msg = await call.read()
            assert msg.WhichOneof("kind") == "release_result", msg
            assert msg.release_result.ref == ref
            return msg.release_result

        # refused, the call goes on, nothing released
        for ref, bad, field in ((1, {}, "ids"), (2, {"ids": ["$"]}, "ids"),
                                (3, {"ids": ids, "delivery_counts": [1]}, "delivery_counts"),
                                (4, {"ids": [ids[0]], "delivery_counts": [0]}, "delivery_counts")):
            r = await answer(ref, **bad)
            assert (r.error.kind, r.error.field, r.released) == ("invalid_argument", field, 0)
        # stale (this call handed it out with count 1) and unknown ids: skipped, not an error
        r = await answer(5, ids=[ids[0]], delivery_counts=[2])
        assert (r.released, r.HasField("error")) == (0, False)
        r = await answer(6, ids=["1-0"])
        assert (r.released, r.HasField("error")) == (0, False)
        assert await pending(d.bus, s) == {i: ("w1", 1) for i in ids}
        # both given back with the counts this call handed out: their credit comes back and,
        # claimable at once, they are redelivered (here to the same call) with their count as it was
        r = await answer(8, ids=ids)
        assert (r.released, r.HasField("error")) == (2, False)
        again = (await call.read()).deliveries.deliveries
        assert [(x.id, x.delivery_count) for x in again] == [(i, 1) for i in ids]
        await call.write(pb.SubscribeRequest(ack=pb.SubscribeAck(ref=9, ids=ids)))
        assert (await call.read()).ack_result.ref == 9
        call.cancel()
    assert await pending(d.bus, s) == {}


async def test_unary_release(door):
    s = door.stream()
    ids = await publish_many(door, s, 2)
    taken = await door.bus.read(s, "workers", "w1", count=2)
    c = door.client()
    assert await c.release(s, "workers", "w1", [(ids[0], 1), (ids[1], 2)]) == 1  # the second: wrong count, skipped
    assert await pending(door.bus, s) == {ids[0]: ("w1", 0), ids[1]: ("w1", 1)}
    assert await c.release(s, "workers", "w1", [taken[1]]) == 1  # a delivery object works too
    with pytest.raises(InvalidArgument):
        await c.release(s, "workers", "w1", [(ids[0], 0)])
    m = pb.ReleaseRequest(stream=s, group="workers", consumer="w1", ids=ids, delivery_counts=[1])
    async with door.channel() as ch:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await pb_grpc.EventBusStub(ch).Release(m, metadata=MD)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_broken_call_releases_its_buffer_on_the_next_call(door, monkeypatch):
    """The sidecar restarts under a subscription: what the broken call had buffered and the
    application never took is released on the new call, with the counts it was received with."""
    releases: list[tuple[str, list]] = []
    real = EventBus.release

    async def spy(self, stream, group, consumer, deliveries):
        releases.append((consumer, [(x[0], x[1]) for x in deliveries]))
        return await real(self, stream, group, consumer, deliveries)

    monkeypatch.setattr(EventBus, "release", spy)
    s = door.stream()
    c = door.client(backoff_initial_s=0.05, backoff_max_s=0.3)
    async with c.subscribe(s, "workers", "w1", max_in_flight=10) as sub:
        await sub.wait_subscribed()
        first, *rest = await publish_many(door, s, 3)
        [d0] = await take(sub, 1)
        await until(lambda: sub._queue.qsize() == 2, "the other two are buffered")
        await door.restart()
        # the app did not take them before the break: redelivered on the new call, count as it was
        got = await take(sub, 2)
        assert sub.reconnects >= 1
    assert d0.id == first
    assert [(x.id, x.delivery_count) for x in got] == [(i, 1) for i in rest]
    assert ("w1", [(i, 1) for i in rest]) in releases
    assert await pending(door.bus, s) == {}
