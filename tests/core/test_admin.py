"""Administration against a real Redis: setup, groups, rewind, dead letters, safe trim, the recovery sweep, idle consumers."""

from __future__ import annotations

import asyncio

import pytest
from friday_bus.core import NotFound
from friday_bus.core.errors import Conflict

from .helpers import FAST, pub


async def test_setup_twice_reports_existing(make_bus, uniq):
    bus = await make_bus({"a": ["g1", "g2"], "b": ["g1"]})
    first = await bus.setup()
    assert sorted(first.created_groups) == sorted([(f"{uniq}.a", "g1"), (f"{uniq}.a", "g2"), (f"{uniq}.b", "g1")])
    assert sorted(first.created_streams) == [f"{uniq}.a", f"{uniq}.b"]
    second = await bus.setup()
    assert second.created_groups == [] and second.created_streams == []
    assert len(second.existing_groups) == 3


async def test_setup_start_position(make_bus, uniq):
    bus = await make_bus({"old": ["late"]})
    s = f"{uniq}.old"
    await bus.redis.xadd(s, {"x": "1"})
    await bus.setup(start="all")
    got = await bus.read(s, "late", "c", block_ms=0)
    assert [d.payload for d in got] == [{"x": "1"}]
    bus2 = await make_bus({"old2": ["late"]})
    s2 = f"{uniq}.old2"
    await bus2.redis.xadd(s2, {"x": "1"})
    await bus2.setup(start="new")
    assert await bus2.read(s2, "late", "c", block_ms=0) == []


async def test_unacked_entry_dead_lettered_after_max_deliveries(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "claim_idle_ms": 100, "max_deliveries": 2}}, **FAST)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"poison": True})
    await bus.read(s, "workers", "c1")
    await asyncio.sleep(0.15)
    [again] = await bus.read(s, "workers", "c2", block_ms=1000)
    assert again.delivery_count == 2
    await asyncio.sleep(0.15)
    assert await bus.sweep_dead(s) == 1  # the recovery loop, with no reader around
    [dead] = await bus.dlq_list(s)
    assert dead.original_id == eid and "not acknowledged" in dead.reason and dead.delivery_count == 2


async def test_dead_letter_after_crash_keeps_the_last_nack_reason(make_bus, uniq):
    spec = {"events": {"groups": ["workers"], "claim_idle_ms": 100, "max_deliveries": 2, "backoff": {"initial_ms": 10}}}
    bus = await make_bus(spec, **FAST)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"x": 1})
    await bus.read(s, "workers", "c1")
    assert (await bus.nack(s, "workers", eid, "parser failed")).outcome == "retry"
    [d2] = await bus.read(s, "workers", "c2", block_ms=2000)  # second delivery; c2 then crashes
    assert d2.delivery_count == 2
    await asyncio.sleep(0.15)
    assert await bus.sweep_dead(s) == 1
    [dead] = await bus.dlq_list(s)
    assert (dead.original_id, dead.reason, dead.delivery_count) == (eid, "parser failed", 2)


async def test_dlq_replay_all_and_by_id(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "max_deliveries": 1}})
    s = f"{uniq}.events"
    await bus.setup()
    ids = [await pub(bus, s, {"i": i, "ok": True}) for i in range(3)]
    for d in await bus.read(s, "workers", "w", count=10):
        assert (await bus.nack(s, "workers", d.entry_id, "fail")).outcome == "dead_lettered"
    dead = await bus.dlq_list(s)
    assert [x.original_id for x in dead] == ids
    one = await bus.dlq_replay(s, [dead[1].dlq_id])
    assert len(one) == 1
    [again] = await bus.read(s, "workers", "w")
    assert again.payload == {"i": 1, "ok": True} and again.entry_id == one[0].new_entry_id
    assert len(await bus.dlq_list(s)) == 2
    with pytest.raises(NotFound):
        await bus.dlq_replay(s, [dead[1].dlq_id])
    rest = await bus.dlq_replay(s, "all")
    assert len(rest) == 2 and await bus.dlq_list(s) == []
    assert [d.payload["i"] for d in await bus.read(s, "workers", "w", count=10)] == [0, 2]


async def test_group_rewind_by_id_and_time(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    ids = [await pub(bus, s, {"i": i}) for i in range(4)]
    got = await bus.read(s, "workers", "w", count=10)
    await bus.ack(s, "workers", [d.entry_id for d in got])
    await bus.rewind(s, "workers", to_id=ids[1])
    assert [d.entry_id for d in await bus.read(s, "workers", "w", count=10)] == ids[2:]
    t2 = int(ids[2].split("-")[0])
    await bus.rewind(s, "workers", to_time_ms=t2)
    again = [d.entry_id for d in await bus.read(s, "workers", "w", count=10)]
    assert again[0] == ids[2] or int(again[0].split("-")[0]) >= t2
    assert set(ids[2:]) <= set(again)
    with pytest.raises(NotFound):
        await bus.rewind(s, "missing-group", to_id=ids[0])


async def test_safe_trim_never_removes_unacked(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["fast", "slow"], "retention": 5}})
    s = f"{uniq}.events"
    await bus.setup()
    ids = [await pub(bus, s, {"i": i}) for i in range(20)]
    fast = await bus.read(s, "fast", "f", count=20)
    await bus.ack(s, "fast", [d.entry_id for d in fast])
    slow = await bus.read(s, "slow", "s", count=8)  # 8 delivered; ack only the first 6
    await bus.ack(s, "slow", [d.entry_id for d in slow[:6]])
    report = await bus.trim(s)
    assert report.removed == 6 and report.length_after == 14 and report.safe_boundary == ids[6]
    remaining = [e for e, _ in await bus.redis.xrange(s)]
    assert remaining == ids[6:]
    assert report.kept_unacked == 9
    await bus.ack(s, "slow", [d.entry_id for d in slow[6:]])
    rest = await bus.read(s, "slow", "s", count=20)
    await bus.ack(s, "slow", [d.entry_id for d in rest])
    report = await bus.trim(s)
    assert report.length_after == 5 and [e for e, _ in await bus.redis.xrange(s)] == ids[-5:]
    status = await bus.stream_status(s)
    assert not [a for a in status.alerts if a.metric == "backlog_over_retention"]


async def test_idle_consumers_without_pending_are_removed(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    await pub(bus, s, {"x": 1})
    await bus.read(s, "workers", "holder")  # holds one pending entry
    await pub(bus, s, {"x": 2})
    [done] = await bus.read(s, "workers", "empty")
    await bus.ack(s, "workers", [done.entry_id])  # holds nothing
    await asyncio.sleep(0.05)
    assert await bus.remove_idle_consumers(s, 60_000) == []  # not idle long enough
    removed = await bus.remove_idle_consumers(s, 10)
    assert removed == [("workers", "empty")]
    assert [c["name"] for c in await bus.redis.xinfo_consumers(s, "workers")] == ["holder"]


async def test_destroy_group_refuses_pending(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    await pub(bus, s, {"x": 1})
    await bus.read(s, "workers", "w")
    with pytest.raises(Conflict):
        await bus.destroy_group(s, "workers")
    assert await bus.destroy_group(s, "workers", force=True) == 1
    with pytest.raises(NotFound):
        await bus.destroy_group(s, "workers")


async def test_runtime_reruns_setup_when_redis_lost_it(redis_server, uniq):
    from friday_bus.core import Runtime, Settings, build_topology

    s = Settings(_env_file=None, redis_url=redis_server.url, key_prefix=f"friday:{uniq}:")
    topo = build_topology(s, {"streams": {f"{uniq}.events": ["workers"]}})
    rt = Runtime(s, topo)
    bus = await rt.start(loops=False)
    try:
        await bus.redis.delete(f"{uniq}.events", bus.setup_key)  # as after a restart without data
        assert not await bus.is_setup()
        await rt._monitor_once()
        assert await bus.is_setup()
        assert [g["name"] for g in await bus.redis.xinfo_groups(f"{uniq}.events")] == ["workers"]
    finally:
        await rt.stop()
