"""Consuming against a real Redis: delivery, reclaiming, retries, NOGROUP recovery, settling, peeking, channels."""

from __future__ import annotations

import asyncio
import time

import pytest
from friday_bus.core import InvalidArgument, NotFound, PublishRequest

from .helpers import FAST, blocked_xreads, pub


async def test_publish_consume_ack(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"email_id": "abc", "n": 1}, source="gmail", correlation_id="c-1")
    [d] = await bus.read(s, "workers", "w1", count=10, block_ms=1000)
    assert (d.entry_id, d.payload, d.delivery_count) == (eid, {"email_id": "abc", "n": 1}, 1)
    assert d.meta.source == "gmail" and d.meta.correlation_id == "c-1" and d.meta.published_at_ms > 0
    assert (await bus.redis.xpending(s, "workers"))["pending"] == 1
    assert await bus.ack(s, "workers", [eid]) == 1
    assert (await bus.redis.xpending(s, "workers"))["pending"] == 0
    assert await bus.ack(s, "workers", [eid]) == 0
    assert await bus.read(s, "workers", "w1", block_ms=0) == []


async def test_two_groups_each_get_all_and_one_consumer_per_event(make_bus, uniq):
    bus = await make_bus({"events": ["g1", "g2"]})
    s = f"{uniq}.events"
    await bus.setup()
    ids = [await pub(bus, s, {"i": i}) for i in range(20)]
    for group in ("g1", "g2"):
        seen: list[str] = []
        for consumer in ("c1", "c2", "c1", "c2"):
            seen += [d.entry_id for d in await bus.read(s, group, consumer, count=5)]
        assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen)) == 20
    consumers = await bus.redis.xinfo_consumers(s, "g1")
    assert sorted(c["pending"] for c in consumers) == [10, 10]


async def test_order_with_one_consumer(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    ids = [await pub(bus, s, {"i": i}) for i in range(50)]
    got = []
    while len(got) < 50:
        got += await bus.read(s, "workers", "solo", count=7)
    assert [d.entry_id for d in got] == ids
    assert [d.payload["i"] for d in got] == list(range(50))


async def test_killed_consumer_entries_are_reclaimed_after_idle(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "claim_idle_ms": 300}}, **FAST)
    s = f"{uniq}.events"
    await bus.setup()
    ids = [await pub(bus, s, {"i": i}) for i in range(3)]
    taken = await bus.read(s, "workers", "doomed", count=10)
    assert len(taken) == 3  # "doomed" dies now without acking
    assert await bus.read(s, "workers", "survivor", block_ms=0) == []  # not idle long enough yet
    await asyncio.sleep(0.35)
    got = await bus.read(s, "workers", "survivor", count=10, block_ms=2000)
    assert [d.entry_id for d in got] == ids
    assert all(d.delivery_count == 2 for d in got)
    assert await bus.ack(s, "workers", ids) == 3


async def test_blocked_read_picks_up_reclaimable_entries(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "claim_idle_ms": 200}}, **FAST)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"x": 1})
    await bus.read(s, "workers", "doomed")
    got = await bus.read(s, "workers", "survivor", block_ms=5000)  # returns once the entry is reclaimable
    assert [d.entry_id for d in got] == [eid]


async def test_nack_retry_then_dead_letter_keeps_reason(make_bus, uniq):
    spec = {"events": {"groups": ["workers"], "max_deliveries": 3, "backoff": {"initial_ms": 100, "multiplier": 2, "max_ms": 300}}}
    bus = await make_bus(spec, **FAST)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"doc": "x"})
    [_d] = await bus.read(s, "workers", "w")
    before = int(time.time() * 1000)
    r1 = await bus.nack(s, "workers", eid, "boom 1")
    after = int(time.time() * 1000)
    assert r1.outcome == "retry" and r1.retry_at_ms is not None
    assert before + 100 <= r1.retry_at_ms <= after + 100  # first backoff step: initial_ms
    assert await bus.read(s, "workers", "w", block_ms=0) == []  # backoff not elapsed
    [d2] = await bus.read(s, "workers", "w", block_ms=3000)
    assert d2.entry_id == eid and d2.delivery_count == 2 and d2.payload == {"doc": "x"}
    before = int(time.time() * 1000)
    r2 = await bus.nack(s, "workers", eid, "boom 2")
    assert r2.outcome == "retry" and r2.retry_at_ms is not None and r2.retry_at_ms >= before + 200  # doubled
    [d3] = await bus.read(s, "workers", "other", block_ms=3000)
    assert d3.delivery_count == 3
    r3 = await bus.nack(s, "workers", eid, "boom 3: final")
    assert r3.outcome == "dead_lettered" and r3.dead_letter_id
    assert (await bus.redis.xpending(s, "workers"))["pending"] == 0
    [dead] = await bus.dlq_list(s)
    assert (dead.original_id, dead.group, dead.reason, dead.delivery_count) == (eid, "workers", "boom 3: final", 3)
    assert dead.payload == {"doc": "x"}
    with pytest.raises(NotFound):
        await bus.nack(s, "workers", eid, "again")


async def test_entries_trimmed_while_pending_are_acked_away(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "claim_idle_ms": 100}}, **FAST)
    s = f"{uniq}.events"
    await bus.setup()
    keep = await pub(bus, s, {"i": 0})
    lost = await pub(bus, s, {"i": 1})
    await bus.read(s, "workers", "c1", count=2)
    await bus.redis.xdel(s, lost)  # deleted by someone else while pending
    await asyncio.sleep(0.15)
    got = await bus.read(s, "workers", "c2", count=10, block_ms=1000)
    assert [d.entry_id for d in got] == [keep]
    pending = await bus.redis.xpending_range(s, "workers", "-", "+", 10)
    assert [p["message_id"] for p in pending] == [keep]


async def test_nogroup_recovery_after_stream_deleted(make_bus, uniq, caplog):
    bus = await make_bus(**FAST)
    s = f"{uniq}.events"
    await bus.setup()
    await bus.redis.delete(s)
    assert await bus.read(s, "workers", "w", block_ms=200) == []
    eid = await pub(bus, s, {"after": "restart"})
    [d] = await bus.read(s, "workers", "w", block_ms=1000)
    assert d.entry_id == eid
    assert "recreated" in caplog.text


async def test_bad_read_arguments(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    for kwargs in ({"count": 0}, {"count": 10**9}, {"block_ms": -1}, {"block_ms": 10**9}):
        with pytest.raises(InvalidArgument):
            await bus.read(s, "workers", "w", **kwargs)
    with pytest.raises(NotFound):
        await bus.read(s, "nogroup", "w")
    for bad_id in ("$", ">", "18446744073709551616-0"):
        with pytest.raises(InvalidArgument):
            await bus.ack(s, "workers", [bad_id])


async def test_channels_publish_and_subscribe(make_bus, uniq):
    bus = await make_bus()
    ch = f"{uniq}.info"
    received = []

    async def listen():
        async for msg in bus.subscribe([ch]):
            received.append(msg)
            return

    task = asyncio.create_task(listen())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = await bus.publish(PublishRequest(ch, {"file": "a.pdf", "size": 3}, source="s"))
        assert r.kind == "channel" and r.entry_id is None
        if r.receivers:
            break
        await asyncio.sleep(0.05)
    await asyncio.wait_for(task, 5)
    assert received[0].payload == {"file": "a.pdf", "size": 3} and received[0].meta.source == "s"
    with pytest.raises(NotFound):
        async for _ in bus.subscribe([f"{uniq}.nochannel"]):
            pass


async def test_peek_next_does_not_touch_groups(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    before = await blocked_xreads(bus)
    task = asyncio.create_task(bus.peek_next(s, block_ms=5000))
    for _ in range(500):  # publish only once Redis holds the peek's XREAD blocked (it reads from "$")
        if await blocked_xreads(bus) > before:
            break
        assert not task.done(), task
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the peek's XREAD never blocked in Redis")
    eid = await pub(bus, s, {"x": 1})
    d = await asyncio.wait_for(task, 6)
    assert d is not None and d.entry_id == eid and d.payload == {"x": 1}
    [real] = await bus.read(s, "workers", "w")
    assert real.entry_id == eid and real.delivery_count == 1


async def test_extend_keeps_long_work_from_being_reclaimed(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "claim_idle_ms": 300}}, **FAST)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"long": "job"})
    [_d] = await bus.read(s, "workers", "slow")
    for _ in range(4):  # 4 x 150 ms of work: past the idle time, but extended all along
        await asyncio.sleep(0.15)
        assert await bus.extend(s, "workers", "slow", [eid]) == 1
        assert await bus.read(s, "workers", "thief", block_ms=0) == []
    assert await bus.extend(s, "workers", "thief", [eid]) == 0  # only the owner can extend
    [p] = await bus.redis.xpending_range(s, "workers", "-", "+", 10)
    assert (p["consumer"], p["times_delivered"]) == ("slow", 1)  # delivery count unchanged
    await asyncio.sleep(0.35)  # stop extending: now it is reclaimed
    [again] = await bus.read(s, "workers", "thief", block_ms=1000)
    assert again.entry_id == eid and again.delivery_count == 2
    assert await bus.extend(s, "workers", "slow", [eid]) == 0


async def test_nack_of_an_entry_deleted_while_pending_says_it_was_acked_away(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "max_deliveries": 1}})
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"x": 1})
    [d] = await bus.read(s, "workers", "w")
    assert d.entry_id == eid
    await bus.redis.xdel(s, eid)  # trimmed or deleted by someone else while pending
    assert [p["message_id"] for p in await bus.redis.xpending_range(s, "workers", "-", "+", 10)] == [eid]
    with pytest.raises(NotFound) as exc:
        await bus.nack(s, "workers", eid, "failed")  # its last delivery: it would be dead-lettered, but it is gone
    assert "acked away" in exc.value.message and exc.value.field == "id"
    assert await bus.redis.xpending_range(s, "workers", "-", "+", 10) == []
    assert (await bus.redis.xpending(s, "workers"))["pending"] == 0
    assert await bus.dlq_list(s) == []  # nothing to dead-letter: no empty dead letter written
