"""A waiting consumer is a consumer (issue 12, section 3): Redis 7.0 creates a group's consumer
only when a read hands it an entry, so `friday status` showed no consumer - and raised
`no_consumer` - while someone was waiting on an idle stream. The read creates it first."""

from __future__ import annotations

import asyncio

WAIT_S = 10.0


async def blocked_group_reads(bus) -> int:
    return sum(1 for c in await bus.redis.client_list() if c.get("cmd") == "xreadgroup" and "b" in c.get("flags", ""))


async def wait_blocked(bus, before: int) -> None:
    async def poll() -> None:
        while await blocked_group_reads(bus) <= before:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), WAIT_S)


async def test_a_blocked_read_on_an_idle_stream_is_a_consumer(make_bus, uniq):
    bus = await make_bus({"events": ["workers"]})
    s = f"{uniq}.events"
    await bus.setup()
    before = await blocked_group_reads(bus)
    reader = asyncio.create_task(bus.read(s, "workers", "agent-1", count=1, block_ms=20_000))
    try:
        await wait_blocked(bus, before)
        st = await bus.stream_status(s)
        [g] = st.groups
        assert [c.name for c in g.consumers] == ["agent-1"]
        assert not [a for a in st.alerts if a.metric == "no_consumer"]
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def test_the_consumer_is_created_once_then_cached(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    before = int((await bus.redis.info("commandstats")).get("cmdstat_xgroup|createconsumer", {}).get("calls", 0))
    for _ in range(3):
        assert await bus.read(s, "workers", "w1", count=1, block_ms=0) == []
    after = int((await bus.redis.info("commandstats")).get("cmdstat_xgroup|createconsumer", {}).get("calls", 0))
    assert after - before == 1
    assert [c["name"] for c in await bus.redis.xinfo_consumers(s, "workers")] == ["w1"]


async def test_the_consumer_is_created_again_after_the_group_vanished(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    assert await bus.read(s, "workers", "w1", count=1, block_ms=0) == []
    await bus.redis.delete(s)  # stream, group and consumer gone (Redis restarted empty...)
    before = await blocked_group_reads(bus)
    reader = asyncio.create_task(bus.read(s, "workers", "w1", count=1, block_ms=20_000))
    try:
        await wait_blocked(bus, before)  # the group was recovered, the read waits again
        [g] = (await bus.stream_status(s)).groups
        assert [c.name for c in g.consumers] == ["w1"]
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
