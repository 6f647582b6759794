"""Rewind refuses a target beyond the stream's last entry and beyond now (issue 12, section 3):
such a position would make the group skip every event published until then, with a lag of 0."""

from __future__ import annotations

import time

import pytest
from friday_bus.core import InvalidArgument, NotFound
from friday_bus.core.names import U64_MAX

from .helpers import pub


def _ms() -> int:
    return int(time.time() * 1000)


async def test_rewind_to_a_future_time_is_refused_and_leaves_the_group(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    await pub(bus, s, {"i": 0})
    before = (await bus.redis.xinfo_groups(s))[0]["last-delivered-id"]
    for future in (_ms() + 3_600_000, U64_MAX):
        with pytest.raises(InvalidArgument) as e:
            await bus.rewind(s, "workers", to_id=None, to_time_ms=future)
        assert e.value.field == "to_time_ms"
        assert e.value.message.startswith(f"to_time_ms {future} is in the future (now is ")
    assert (await bus.redis.xinfo_groups(s))[0]["last-delivered-id"] == before
    # the group still gets what is published next
    eid = await pub(bus, s, {"i": 1})
    assert [d.entry_id for d in await bus.read(s, "workers", "w", count=10)][-1] == eid


async def test_rewind_to_an_id_after_the_last_entry_is_refused(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    last = await pub(bus, s, {"i": 0})
    beyond = f"{_ms() + 3_600_000}-0"
    with pytest.raises(InvalidArgument) as e:
        await bus.rewind(s, "workers", to_id=beyond, to_time_ms=None)
    assert e.value.field == "to_id"
    assert e.value.message.startswith(f"to_id {beyond} is after the stream's last entry {last}")
    with pytest.raises(InvalidArgument):
        await bus.rewind(s, "workers", to_id=f"{U64_MAX}-{U64_MAX}", to_time_ms=None)
    # the last entry itself, and now, are fine
    assert await bus.rewind(s, "workers", to_id=last, to_time_ms=None) == last
    await bus.rewind(s, "workers", to_id=None, to_time_ms=_ms())


async def test_empty_stream_limits_are_zero_or_the_group_position(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()  # the stream exists, empty: its last entry id is 0-0
    assert await bus.rewind(s, "workers", to_id="0-0", to_time_ms=None) == "0-0"
    with pytest.raises(InvalidArgument) as e:
        await bus.rewind(s, "workers", to_id=f"{_ms() + 60_000}-0", to_time_ms=None)
    assert "after the stream's last entry 0-0" in e.value.message
    # every entry published, then deleted: the stream is empty again, the group is at the last id
    eid = await pub(bus, s, {"i": 0})
    await bus.read(s, "workers", "w", count=1)
    await bus.ack(s, "workers", [eid])
    await bus.redis.xdel(s, eid)
    assert await bus.redis.xlen(s) == 0
    assert await bus.rewind(s, "workers", to_id=eid, to_time_ms=None) == eid  # where the group already is


async def test_a_group_already_in_the_future_can_be_brought_back(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    last = await pub(bus, s, {"i": 0})
    stuck = f"{_ms() + 3_600_000}-0"
    await bus.redis.xgroup_setid(s, "workers", stuck)  # as an earlier sidecar allowed
    assert await bus.rewind(s, "workers", to_id=stuck, to_time_ms=None) == stuck  # no move: allowed
    assert await bus.rewind(s, "workers", to_id="0-0", to_time_ms=None) == "0-0"
    assert [d.entry_id for d in await bus.read(s, "workers", "w", count=10)] == [last]


async def test_rewind_of_a_missing_group_or_stream_is_still_not_found(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    with pytest.raises(NotFound):
        await bus.rewind(s, "nope", to_id="0-0", to_time_ms=None)
    await bus.redis.delete(s)
    with pytest.raises(NotFound):
        await bus.rewind(s, "workers", to_id=None, to_time_ms=_ms() + 3_600_000)
