"""The core against a real Redis: delivery, recovery, dead letters, retention, replay."""

from __future__ import annotations

import asyncio
import time

import pytest
from friday_bus.core import BacklogFull, InvalidArgument, NotFound, PublishRequest
from friday_bus.core.errors import Conflict

from .seed_format import seed_consume_one, seed_publish

FAST = {"claim_interval_ms": 50}


async def pub(bus, stream, payload, **kw):
    return (await bus.publish(PublishRequest(stream, payload, **kw))).entry_id


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
    [d] = await bus.read(s, "workers", "w")
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


async def test_idempotency_key(make_bus, uniq):
    bus = await make_bus(idempotency_window_s=60)
    s = f"{uniq}.events"
    await bus.setup()
    first = await bus.publish(PublishRequest(s, {"x": 1}, event_id="evt-1"))
    second = await bus.publish(PublishRequest(s, {"x": 2}, event_id="evt-1"))
    assert second.entry_id == first.entry_id and second.duplicate and not first.duplicate
    assert await bus.redis.xlen(s) == 1
    batch = await bus.publish_batch([PublishRequest(s, {"y": 1}, event_id="evt-2"), PublishRequest(s, {"y": 2}, event_id="evt-2")])
    assert batch[0].entry_id == batch[1].entry_id and batch[1].duplicate
    assert await bus.redis.xlen(s) == 2
    ttl = await bus.redis.ttl(bus._idem_key(s, "evt-1"))
    assert 0 < ttl <= 60


async def test_lossless_types(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    payload = {"b": True, "i": 3, "f": 2.5, "n": None, "o": {"deep": [1, True, None, {"x": "y"}]}, "s": "3", "big": 2**64}
    await pub(bus, s, payload)
    [d] = await bus.read(s, "workers", "w")
    assert d.payload == payload and type(d.payload["b"]) is bool and type(d.payload["i"]) is int and d.payload["s"] == "3"


async def test_seed_publisher_events_are_consumed(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    await seed_publish(bus.redis, s, {"email_id": "abc123", "category": "medical", "has_attachments": True, "tags": ["a", "b"], "meta": {"k": 1}})
    [d] = await bus.read(s, "workers", "w")
    assert d.payload == {"email_id": "abc123", "category": "medical", "has_attachments": "True", "tags": ["a", "b"], "meta": {"k": 1}}
    assert d.meta.encoding == "legacy" and d.meta.published_at_ms == int(d.entry_id.split("-")[0])


async def test_seed_consumer_reads_sidecar_events(make_bus, uniq):
    bus = await make_bus({"events": ["workers", "legacy-consumer"]})
    s = f"{uniq}.events"
    await bus.setup()
    payload = {"email_id": "abc123", "priority": "high", "has_attachments": True, "count": 2, "meta": {"k": [1, 2]}}
    eid = await pub(bus, s, payload, source="n8n")
    got_id, data = await seed_consume_one(bus.redis, s, "legacy-consumer", "worker-1")
    assert got_id == eid
    for key, value in payload.items():
        assert data[key] == (value if isinstance(value, dict) else str(value))


@pytest.mark.parametrize("payload, fragment", [
    ([1], "JSON object"), ({"": 1}, "non-empty"), ({"_friday_ts": 1}, "reserved"), ({"big": "x" * 300}, "over the"),
])
async def test_rejected_inputs_write_nothing(make_bus, uniq, payload, fragment):
    bus = await make_bus(max_payload_bytes=200)
    s = f"{uniq}.events"
    await bus.setup()
    with pytest.raises(InvalidArgument) as exc:
        await bus.publish(PublishRequest(s, payload))
    assert fragment in exc.value.message
    with pytest.raises(InvalidArgument):  # one bad event rejects the whole batch
        await bus.publish_batch([PublishRequest(s, {"ok": 1}), PublishRequest(s, payload)])
    assert await bus.redis.xlen(s) == 0


async def test_unknown_stream_and_bad_names_write_nothing(make_bus, uniq):
    bus = await make_bus()
    with pytest.raises(NotFound):
        await bus.publish(PublishRequest(f"{uniq}.nope", {"x": 1}))
    for bad in ("a*b", "x{y}", "a:b", "a\x00", "x" * 10_000):
        with pytest.raises(InvalidArgument):
            await bus.publish(PublishRequest(bad, {"x": 1}))
    with pytest.raises(InvalidArgument):
        await bus.publish(PublishRequest(f"{uniq}.events", {"x": 1}, event_id=""))
    assert await bus.redis.exists(f"{uniq}.nope") == 0
    assert await bus.redis.keys(f"*{uniq}*") == []


async def test_unknown_streams_allowed_by_topology(make_bus, uniq):
    bus = await make_bus(allow_unknown_streams=True)
    r = await bus.publish(PublishRequest(f"{uniq}.adhoc", {"x": 1}))
    assert r.entry_id and await bus.redis.xlen(f"{uniq}.adhoc") == 1


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


async def test_backlog_hard_cap(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "retention": 2, "max_backlog": 3}})
    s = f"{uniq}.events"
    await bus.setup()
    for i in range(3):
        await pub(bus, s, {"i": i})
    with pytest.raises(BacklogFull) as exc:
        await pub(bus, s, {"i": 3})
    assert "hard cap" in exc.value.message
    with pytest.raises(BacklogFull):
        await bus.publish_batch([PublishRequest(s, {"i": 3})])
    assert await bus.redis.xlen(s) == 3
    got = await bus.read(s, "workers", "w", count=10)
    await bus.ack(s, "workers", [d.entry_id for d in got])
    await bus.trim(s)
    assert await pub(bus, s, {"i": 4})


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


async def test_status_matches_redis(make_bus, uniq):
    bus = await make_bus({"events": ["workers", "idle"]}, alert_length=3, alert_pending=1, alert_lag=2)
    s = f"{uniq}.events"
    await bus.setup()
    for i in range(5):
        await pub(bus, s, {"i": i})
    await bus.read(s, "workers", "w", count=2)
    st = await bus.stream_status(s)
    info = await bus.redis.xinfo_stream(s)
    assert st.length == info["length"] == 5
    assert st.first_entry_id == info["first-entry"][0] and st.last_entry_id == info["last-entry"][0]
    g = {x.name: x for x in st.groups}
    assert g["workers"].pending == 2 and g["workers"].lag == 3 and [c.name for c in g["workers"].consumers] == ["w"]
    assert g["idle"].lag == 5 and g["idle"].consumers == []
    metrics = {(a.group, a.metric) for a in st.alerts}
    assert {(None, "length"), ("workers", "pending"), ("workers", "lag"), ("idle", "no_consumer"), ("idle", "lag")} <= metrics
    assert st.oldest_pending_age_ms is not None and st.oldest_pending_age_ms >= 0


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
    task = asyncio.create_task(bus.peek_next(s, block_ms=5000))
    await asyncio.sleep(0.2)
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
    [d] = await bus.read(s, "workers", "slow")
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
