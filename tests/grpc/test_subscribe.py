"""The Subscribe stream: credit, acks and nacks on the stream, disconnects, shutdown, reconnects."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest
from friday_bus.core import PublishRequest
from friday_bus.grpc_api.subscription import SubscribeCall
from friday_bus_client import NotFound
from friday_bus_client._proto import eventbus_pb2 as pb
from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc

MD = (("authorization", "Bearer all-key"),)


async def publish_many(door, stream: str, n: int) -> list[str]:
    results = await door.bus.publish_batch([PublishRequest(stream, {"i": i}) for i in range(n)])
    return [r.entry_id for r in results]


async def open_call(stub, stream: str, group: str, consumer: str, credit: int):
    call = stub.Subscribe(metadata=MD)
    await call.write(pb.SubscribeRequest(start=pb.SubscribeStart(stream=stream, group=group, consumer=consumer,
                                                                 max_in_flight=credit)))
    first = await call.read()
    assert first.WhichOneof("kind") == "subscribed" and first.subscribed.max_in_flight == credit
    return call


async def read_ids(call, n: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < n:
        msg = await call.read()
        assert msg.WhichOneof("kind") == "deliveries"
        ids += [d.id for d in msg.deliveries.deliveries]
    assert len(ids) == n
    return ids


async def consumer_pending(door, stream: str, group: str, consumer: str) -> int:
    for c in await door.bus.redis.xinfo_consumers(stream, group):
        if c["name"] == consumer:
            return int(c["pending"])
    return 0


async def test_credit_is_never_exceeded(door):
    s, credit, total = door.stream(), 7, 200
    ids = await publish_many(door, s, total)
    rng = random.Random(42)
    async with door.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "w1", credit)
        outstanding: list[str] = []
        seen: list[str] = []
        ref = 0
        while len(seen) < total:
            msg = await call.read()
            kind = msg.WhichOneof("kind")
            if kind != "deliveries":
                assert kind == "ack_result" and not msg.ack_result.HasField("error")
                continue
            for d in msg.deliveries.deliveries:
                assert len(outstanding) < credit, "a delivery arrived while the credit was used up"
                outstanding.append(d.id)
                seen.append(d.id)
            # the sidecar never even reads more than the credit from Redis
            assert await consumer_pending(door, s, "workers", "w1") <= credit
            if len(outstanding) == credit or rng.random() < 0.3:
                k = rng.randint(1, len(outstanding))
                batch, outstanding = outstanding[:k], outstanding[k:]
                ref += 1
                await call.write(pb.SubscribeRequest(ack=pb.SubscribeAck(ref=ref, ids=batch)))
        assert seen == ids  # each once, in order
        call.cancel()


async def test_acks_and_nacks_on_the_stream(start_door):
    d = await start_door(max_deliveries=2, backoff_initial_ms=1, backoff_max_ms=1)
    s = d.stream()
    [eid] = await publish_many(d, s, 1)
    async with d.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "w1", 1)
        [first] = (await call.read()).deliveries.deliveries
        assert (first.id, first.delivery_count) == (eid, 1)
        await call.write(pb.SubscribeRequest(nack=pb.SubscribeNack(ref=1, id=eid, reason="boom")))
        res = (await call.read()).nack_result
        assert res.ref == 1 and res.result.outcome == "retry" and res.result.HasField("retry_at_ms")
        [second] = (await call.read()).deliveries.deliveries  # the credit came back, the backoff elapsed: redelivered
        assert (second.id, second.delivery_count) == (eid, 2)
        await call.write(pb.SubscribeRequest(nack=pb.SubscribeNack(ref=2, id=eid, reason="boom again")))
        res = (await call.read()).nack_result
        assert res.ref == 2 and res.result.outcome == "dead_lettered"
        # nacking it once more: not pending any more, answered with an error, the call goes on
        await call.write(pb.SubscribeRequest(nack=pb.SubscribeNack(ref=3, id=eid, reason="x")))
        res = (await call.read()).nack_result
        assert res.ref == 3 and res.error.kind == "not_found" and not res.HasField("result")
        [eid2] = await publish_many(d, s, 1)
        [third] = (await call.read()).deliveries.deliveries
        assert third.id == eid2
        await call.write(pb.SubscribeRequest(ack=pb.SubscribeAck(ref=4, ids=[eid2])))
        res = (await call.read()).ack_result
        assert res.ref == 4 and not res.HasField("error")
        assert await consumer_pending(d, s, "workers", "w1") == 0
        call.cancel()
    [dl] = await d.bus.dlq_list(s)
    assert dl.original_id == eid and dl.reason == "boom again"


async def test_disconnect_leaves_entries_pending_and_another_subscriber_reclaims_them(start_door):
    d = await start_door(claim_idle_ms=200)
    s = d.stream()
    ids = await publish_many(d, s, 3)
    async with d.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "gone", 3)
        got = await read_ids(call, 3)
        assert got == ids
        call.cancel()  # the client goes away without acking
    # nothing was acked on its behalf
    assert await consumer_pending(d, s, "workers", "gone") == 3
    c = d.client()
    reclaimed = []
    async with c.subscribe(s, "workers", "heir", max_in_flight=10) as sub:
        async for delivery in sub:
            assert delivery.delivery_count == 2 and delivery.consumer == "heir"
            reclaimed.append(delivery.id)
            await delivery.ack()
            if len(reclaimed) == 3:
                break
    assert sorted(reclaimed) == ids
    assert (await d.bus.redis.xpending(s, "workers"))["pending"] == 0


async def test_client_gone_stops_the_read_promptly(door):
    """A departed subscriber's blocking read is cancelled: its consumer takes nothing published later."""
    s = door.stream()
    async with door.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "left", 5)
        call.cancel()
    # the server side ends; then an event published afterwards is not taken by "left"
    c = door.client()
    async with c.subscribe(s, "workers", "stays", max_in_flight=5) as sub:
        await sub.wait_subscribed()
        await c.publish(s, {"after": True})
        async for delivery in sub:
            assert delivery.payload == {"after": True}
            await delivery.ack()
            break
    assert await consumer_pending(door, s, "workers", "left") == 0


async def test_unknown_group_fails_the_subscription(door):
    c = door.client()
    with pytest.raises(NotFound, match="does not exist"):
        async for _ in c.subscribe(door.stream(), "nope", "w1"):
            pass


async def test_half_close_ends_the_call_and_keeps_deliveries_pending(door):
    s = door.stream()
    await publish_many(door, s, 2)
    async with door.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "w1", 2)
        assert (await call.read()).WhichOneof("kind") == "deliveries"
        await call.done_writing()
        while await call.read() is not grpc.aio.EOF:
            pass
        assert await call.code() == grpc.StatusCode.OK
    assert await consumer_pending(door, s, "workers", "w1") == 2


async def test_shutdown_ends_idle_subscriptions_with_unavailable(door):
    s = door.stream()
    async with door.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "w1", 2)
        stopping = asyncio.create_task(door.server.stop(60))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call.read()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in e.value.details()
        await stopping  # no call left: returns without waiting for the grace period


async def test_shutdown_drains_acks_of_in_flight_deliveries(door):
    s = door.stream()
    [eid] = await publish_many(door, s, 1)
    async with door.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "w1", 5)
        assert await read_ids(call, 1) == [eid]
        stopping = asyncio.create_task(door.server.stop(60))
        await asyncio.sleep(0)
        await publish_many(door, s, 1)  # not delivered any more: the sidecar is stopping
        await call.write(pb.SubscribeRequest(ack=pb.SubscribeAck(ref=1, ids=[eid])))
        res = (await call.read()).ack_result
        assert res.ref == 1 and not res.HasField("error")
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call.read()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        await stopping
    # eid is acked; the event published during the shutdown was not delivered: the read that was
    # already waiting may have taken it, and then gave it back uncounted (delivery count 0).
    left = await door.bus.redis.xpending_range(s, "workers", "-", "+", 10)
    assert [p["times_delivered"] for p in left] in ([], [0]), left
    assert eid not in {p["message_id"] for p in left}


async def test_subscription_resumes_after_a_sidecar_restart(door):
    s = door.stream()
    c = door.client(backoff_initial_s=0.05, backoff_max_s=0.5)
    got = []
    async with c.subscribe(s, "workers", "w1", max_in_flight=5) as sub:
        await sub.wait_subscribed()
        await c.publish(s, {"n": 1})
        it = sub
        d1 = await anext(it)
        got.append(d1.payload["n"])
        await door.restart()
        # the delivery received before the restart can still be acked (by a unary Ack)
        await d1.ack()
        await sub.wait_subscribed()
        await c.publish(s, {"n": 2})
        d2 = await anext(it)
        got.append(d2.payload["n"])
        await d2.ack()
        assert sub.reconnects >= 1
    assert got == [1, 2]
    assert (await door.bus.redis.xpending(s, "workers"))["pending"] == 0


async def test_publish_retries_while_the_sidecar_restarts(door):
    s = door.stream()
    c = door.client(backoff_initial_s=0.05, backoff_max_s=0.3, retries=50)
    await c.publish(s, {"n": 0})
    port = door.server.port
    await door.stop()
    pending = asyncio.create_task(c.publish(s, {"n": 1}))
    await asyncio.sleep(0.2)  # let it fail at least once against the stopped sidecar
    door.settings = door.settings.model_copy(update={"grpc_port": port})
    from friday_bus.core import Runtime
    from friday_bus.grpc_api import start_grpc_server

    door.runtime = Runtime(door.settings, door.runtime.topology)
    await door.runtime.start(loops=False)
    door.server = await start_grpc_server(door.runtime, door.settings)
    r = await pending
    assert r.entry_id
    assert int(await door.bus.redis.xlen(s)) == 2


async def test_publish_gives_up_after_bounded_retries(door):
    from friday_bus_client import FridayClient, Unavailable

    c = FridayClient(door.target, api_key="all-key", retries=2, backoff_initial_s=0.01, backoff_max_s=0.02)
    try:
        await door.server.stop(0)
        with pytest.raises(Unavailable):
            await c.publish(door.stream(), {"a": 1})
    finally:
        await c.close()


async def xack_calls(door) -> int:
    return int((await door.bus.redis.info("commandstats")).get("cmdstat_xack", {}).get("calls", 0))


async def until(condition, what: str) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting until {what}")


async def test_acks_sent_together_are_applied_together_and_each_answered(door, monkeypatch):
    s = door.stream()
    gate_id, *ids = await publish_many(door, s, 7)
    # Spy on the bus: every ack call the servicer makes, with its ids. The first (the gate)
    # waits until the burst below is queued behind it, so that "sent together" is certain.
    real_ack, applied, gate = door.bus.ack, [], asyncio.Event()

    async def ack(stream, group, entry_ids):
        applied.append(list(entry_ids))
        if list(entry_ids) == [gate_id]:
            await gate.wait()
        return await real_ack(stream, group, entry_ids)

    monkeypatch.setattr(door.bus, "ack", ack)
    calls = []
    init = SubscribeCall.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        calls.append(self)

    monkeypatch.setattr(SubscribeCall, "__init__", recording_init)
    async with door.channel() as ch:
        call = await open_call(pb_grpc.EventBusStub(ch), s, "workers", "w1", 10)
        assert await read_ids(call, 7) == [gate_id, *ids]
        await call.write(pb.SubscribeRequest(ack=pb.SubscribeAck(ref=9, ids=[gate_id])))
        await until(lambda: applied == [[gate_id]], "the gate ack is being applied")
        xacks_before = await xack_calls(door)
        # three well-formed acks, one malformed between them, then a nack
        for ref, batch in ((1, ids[0:2]), (2, ids[2:3]), (3, ["$"]), (4, ids[3:5])):
            await call.write(pb.SubscribeRequest(ack=pb.SubscribeAck(ref=ref, ids=batch)))
        await call.write(pb.SubscribeRequest(nack=pb.SubscribeNack(ref=5, id=ids[5], reason="no")))
        [session] = calls
        await until(lambda: len(session.inbox) == 5, "the burst is queued in the call")
        gate.set()
        results = {}
        while len(results) < 6:
            msg = await call.read()
            kind = msg.WhichOneof("kind")
            r = msg.ack_result if kind == "ack_result" else msg.nack_result
            results[r.ref] = r.error.kind if r.HasField("error") else "ok"
        assert results == {9: "ok", 1: "ok", 2: "ok", 3: "invalid_argument", 4: "ok", 5: "ok"}
        # Applied together: refs 1 and 2 by ONE bus call (one XACK); the malformed one alone,
        # to answer it alone (refused before Redis); ref 4 after it, alone (a nack follows).
        assert applied == [[gate_id], ids[0:3], ["$"], ids[3:5]]
        assert await xack_calls(door) - xacks_before == 1 + 2  # the gate's, then one per bus call
        call.cancel()
    pending = await door.bus.redis.xpending_range(s, "workers", "-", "+", 10)
    assert [p["message_id"] for p in pending] == [ids[5]]  # nacked: pending until its redelivery


async def test_extend_keeps_a_long_delivery_from_being_reclaimed(start_door):
    d = await start_door(claim_idle_ms=1000)
    s = d.stream()
    [eid] = await publish_many(d, s, 1)
    c = d.client()
    async with c.subscribe(s, "workers", "slow") as sub:
        first = await anext(sub)
        assert first.id == eid
        other = d.client().subscribe(s, "workers", "eager")
        await other.wait_subscribed()
        # a long job (longer than claim_idle_ms in all): extend well within it, a few times.
        # Were it reclaimed by "eager" meanwhile, extend would answer False.
        for _ in range(6):
            idle = (await d.bus.redis.xpending_range(s, "workers", "-", "+", 1))[0]["time_since_delivered"]
            assert await first.extend() is True
            assert (await d.bus.redis.xpending_range(s, "workers", "-", "+", 1))[0]["time_since_delivered"] <= idle
            await asyncio.sleep(0.2)
        await first.ack()
        assert await first.extend() is False  # acked: nothing to extend
        await other.close()
    assert await c.extend(s, "workers", "slow", [eid]) == 0
    assert (await d.bus.redis.xpending(s, "workers"))["pending"] == 0


async def test_many_idle_subscribers_do_not_starve_publishers(door):
    """Each idle Subscribe call holds a Redis connection in a blocking read: 150 of them
    (more than redis-py's default pool of 100) must neither fail nor make publishing fail."""
    s = door.stream()
    c = door.client()
    subs = [c.subscribe(s, "workers", f"idle-{i}", max_in_flight=1) for i in range(150)]
    try:
        await asyncio.gather(*(sub.wait_subscribed() for sub in subs))
        for i in range(20):
            assert (await c.publish(s, {"i": i})).entry_id
        assert int(await door.bus.redis.xlen(s)) == 20
    finally:
        await asyncio.gather(*(sub.close() for sub in subs))
