"""Release: deliveries a consumer never handed to its code are given back with their delivery count
as it was, claimable at once; anything acked, reclaimed, counted again or nacked since is left alone."""

from __future__ import annotations

import pytest
from friday_bus.core import InvalidArgument, NotFound
from friday_bus.core.consuming import ClaimSchedule
from friday_bus.core.limits import MAX_ACK_IDS

from .helpers import pub

# Reclaiming by idle time never happens within a test: only a release makes an entry claimable.
SLOW = {"groups": ["workers"], "claim_idle_ms": 600_000}


async def pending(bus, s, eid):
    """(owner, delivery count) of a pending entry, or None."""
    rows = await bus.redis.xpending_range(s, "workers", eid, eid, 1)
    return (rows[0]["consumer"], rows[0]["times_delivered"]) if rows else None


async def test_release_restores_the_count_and_makes_the_entry_claimable_at_once(make_bus, uniq):
    bus = await make_bus({"events": SLOW}, claim_interval_ms=600_000)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"n": 1})
    [d] = await bus.read(s, "workers", "w1", count=10)
    assert d.delivery_count == 1
    assert await bus.read(s, "workers", "w2", block_ms=0) == []  # held by w1, not idle

    assert await bus.release(s, "workers", "w1", [(eid, 1)]) == 1
    assert await pending(bus, s, eid) == ("w1", 0)  # still pending (nothing acked), count given back
    # claimable at once, although neither the claim idle time nor the claim interval elapsed
    [again] = await bus.read(s, "workers", "w2", count=10, block_ms=0)
    assert (again.entry_id, again.delivery_count, again.consumer) == (eid, 1, "w2")
    assert await pending(bus, s, eid) == ("w2", 1)


async def test_release_then_claim_gives_the_count_as_before(make_bus, uniq):
    spec = {"events": {**SLOW, "backoff": {"initial_ms": 1, "multiplier": 1, "max_ms": 1}}}
    bus = await make_bus(spec)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"n": 1})
    await bus.read(s, "workers", "w1")
    await bus.nack(s, "workers", eid, "failed once")  # a handled attempt: it counts
    [second] = await bus.read(s, "workers", "w1", block_ms=2000)
    assert second.delivery_count == 2
    assert await bus.release(s, "workers", "w1", [second]) == 1  # a Delivery object works as well
    for consumer in ("w2", "w3"):  # released again and again: never counted
        [d] = await bus.read(s, "workers", consumer, block_ms=0)
        assert (d.entry_id, d.delivery_count) == (eid, 2)
        assert await bus.release(s, "workers", consumer, [(d.entry_id, d.delivery_count)]) == 1
    assert await pending(bus, s, eid) == ("w3", 1)


async def test_released_entries_are_never_dead_lettered_for_it(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "claim_idle_ms": 1, "max_deliveries": 1}})
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"n": 1})
    [d] = await bus.read(s, "workers", "w1")
    assert await bus.release(s, "workers", "w1", [d]) == 1
    assert await bus.sweep_dead(s) == 0  # one delivery allowed, none used
    [again] = await bus.read(s, "workers", "w2", block_ms=0)
    assert (again.entry_id, again.delivery_count) == (eid, 1)
    assert await bus.dlq_list(s) == []


async def test_release_skips_what_was_acked_reclaimed_counted_or_nacked_since(make_bus, uniq):
    bus = await make_bus({"events": SLOW})
    s = f"{uniq}.events"
    await bus.setup()
    acked, taken, counted, nacked = [await pub(bus, s, {"i": i}) for i in range(4)]
    got = await bus.read(s, "workers", "w1", count=10)
    assert [d.entry_id for d in got] == [acked, taken, counted, nacked]
    await bus.ack(s, "workers", [acked])
    await bus.redis.xclaim(s, "workers", "w2", 0, [taken])  # another consumer reclaimed it: count 2, owner w2
    await bus.redis.xclaim(s, "workers", "w1", 0, [counted])  # delivered again to w1 since: count 2
    await bus.nack(s, "workers", nacked, "bad")  # handled and rejected: waits for its retry
    before = {eid: await pending(bus, s, eid) for eid in (taken, counted, nacked)}

    released = await bus.release(s, "workers", "w1", [(acked, 1), (taken, 1), (counted, 1), (nacked, 1)])
    assert released == 0
    assert {eid: await pending(bus, s, eid) for eid in (taken, counted, nacked)} == before
    assert before == {taken: ("w2", 2), counted: ("w1", 2), nacked: ("w1", 1)}
    assert await pending(bus, s, acked) is None
    # the other consumer's entry, with the count it really has, is not w1's to release either
    assert await bus.release(s, "workers", "w1", [(taken, 2)]) == 0
    # a wrong count for an entry w1 does hold: skipped
    assert await bus.release(s, "workers", "w1", [(counted, 1), (counted, 3)]) == 0
    assert await pending(bus, s, counted) == ("w1", 2)
    # the same delivery named twice is released once
    assert await bus.release(s, "workers", "w1", [(counted, 2), (counted, 2)]) == 1
    assert await pending(bus, s, counted) == ("w1", 1)


async def test_bad_releases_are_refused_and_change_nothing(make_bus, uniq):
    bus = await make_bus({"events": SLOW})
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"n": 1})
    await bus.read(s, "workers", "w1")
    bad = [
        ("w1", []),
        ("w1", [(eid, 1)] * (MAX_ACK_IDS + 1)),
        ("w1", [("$", 1)]),
        ("w1", [(eid, 0)]),
        ("w1", [(eid, True)]),
        ("w1", [(eid, "1")]),
        ("w1", [(eid, 1.0)]),
        ("w1", [eid]),
        ("bad consumer", [(eid, 1)]),
    ]
    for consumer, deliveries in bad:
        with pytest.raises(InvalidArgument):
            await bus.release(s, "workers", consumer, deliveries)
    with pytest.raises(NotFound):
        await bus.release(s, "nope", "w1", [(eid, 1)])
    assert await pending(bus, s, eid) == ("w1", 1)


def test_a_release_makes_the_next_read_claim():
    sch = ClaimSchedule(60.0)
    sch.claimed(("s", "g"), 100.0)
    sch.claimed(("s", "h"), 100.0)
    assert not sch.due(("s", "g"), 100.0)
    sch.released(("s", "g"))
    assert sch.due(("s", "g"), 100.0)
    assert not sch.due(("s", "h"), 100.0)  # per (stream, group)
