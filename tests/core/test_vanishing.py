"""A stream deleted under a blocked read (Redis 7: ``UNBLOCKED the stream key no longer exists``).

The read must treat it as the stream vanishing (like NOGROUP): recreate a topology stream and
group, log it, and keep waiting for the rest of its block time instead of failing the call.
"""

from __future__ import annotations

import asyncio

import pytest
from friday_bus.core import NotFound, Unavailable

from .helpers import pub

SLOW_CLAIM = {"claim_interval_ms": 60_000}
"""The read blocks in one XREADGROUP for its whole block time (no claim cycle cuts it short)."""


async def _blocked_xreadgroups(bus) -> int:
    return sum(1 for c in await bus.redis.client_list() if c.get("cmd") == "xreadgroup" and "b" in c.get("flags", ""))


async def _until_blocked(bus) -> None:
    for _ in range(500):
        if await _blocked_xreadgroups(bus):
            return
        await asyncio.sleep(0.01)
    pytest.fail("the read never blocked in XREADGROUP")


async def _until_group_exists(bus, stream: str, group: str) -> None:
    for _ in range(500):
        if await bus.redis.exists(stream) and group in {g["name"] for g in await bus.redis.xinfo_groups(stream)}:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"group {group} was not recreated on {stream}")


async def test_stream_deleted_under_a_blocked_read_is_recreated_and_the_read_returns(make_bus, uniq, caplog):
    bus = await make_bus(**SLOW_CLAIM)
    s = f"{uniq}.events"
    await bus.setup()
    read = asyncio.create_task(bus.read(s, "workers", "w", count=10, block_ms=1500))
    await _until_blocked(bus)
    await bus.redis.delete(s)
    assert await asyncio.wait_for(read, 5) == []  # no exception: the rest of the block time gave nothing
    assert await bus.redis.exists(s)
    assert [g["name"] for g in await bus.redis.xinfo_groups(s)] == ["workers"]
    assert "vanished" in caplog.text and s in caplog.text
    eid = await pub(bus, s, {"after": "delete"})
    [d] = await bus.read(s, "workers", "w", block_ms=1000)
    assert (d.entry_id, d.payload) == (eid, {"after": "delete"})


async def test_the_read_keeps_waiting_after_the_recovery_and_gets_a_new_event(make_bus, uniq):
    bus = await make_bus(**SLOW_CLAIM)
    s = f"{uniq}.events"
    await bus.setup()
    read = asyncio.create_task(bus.read(s, "workers", "w", count=10, block_ms=10_000))
    await _until_blocked(bus)
    await bus.redis.delete(s)
    await _until_group_exists(bus, s, "workers")
    eid = await pub(bus, s, {"n": 1})
    [d] = await asyncio.wait_for(read, 5)  # the same read, still waiting, delivers it
    assert (d.entry_id, d.payload, d.delivery_count) == (eid, {"n": 1}, 1)


async def test_a_group_created_at_run_time_is_not_recreated_and_the_read_says_so(make_bus, uniq):
    bus = await make_bus(**SLOW_CLAIM)
    s = f"{uniq}.events"
    await bus.setup()
    assert await bus.create_group(s, "adhoc")
    read = asyncio.create_task(bus.read(s, "adhoc", "w", block_ms=10_000))
    await _until_blocked(bus)
    await bus.redis.delete(s)
    with pytest.raises(NotFound) as exc:  # as for NOGROUP: only topology groups are recreated
        await asyncio.wait_for(read, 5)
    assert "group 'adhoc' no longer exists" in exc.value.message and exc.value.field == "group"


async def test_a_read_unblocked_by_the_server_is_unavailable_not_a_deleted_stream(make_bus, uniq):
    """Redis also answers UNBLOCKED when it unblocks its clients itself (a master demoted in a
    failover, ``CLIENT UNBLOCK id ERROR``): the stream is still there, so the read is a retriable
    Unavailable, not a recovery (which would say NotFound for a run-time group)."""
    bus = await make_bus(**SLOW_CLAIM)
    s = f"{uniq}.events"
    await bus.setup()
    await bus.create_group(s, "runtime-group", "new")
    read = asyncio.create_task(bus.read(s, "runtime-group", "w", count=10, block_ms=10_000))
    await _until_blocked(bus)
    [client_id] = [c["id"] for c in await bus.redis.client_list()
                   if c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "")]
    assert await bus.redis.execute_command("CLIENT", "UNBLOCK", client_id, "ERROR")
    with pytest.raises(Unavailable, match="retry"):
        await asyncio.wait_for(read, 5)
    assert "runtime-group" in {g["name"] for g in await bus.redis.xinfo_groups(s)}


async def test_a_read_served_by_a_node_without_the_group_is_unavailable_not_not_found(redis_server, tmp_path, uniq):
    """The blocking client on another node than the writing one (sentinel: a failover moving the
    connections, until the next refresh_master): the group exists where the bus writes, so the
    read says retry (Unavailable), not that the group is gone (NotFound)."""
    from friday_bus.core import EventBus, Settings, build_topology
    from friday_bus.core.connection import build_client

    from tests.conftest import RedisServer

    other = RedisServer(tmp_path / "other").start()
    s = Settings(_env_file=None, redis_url=redis_server.url, key_prefix=f"friday:{uniq}:")
    topo = build_topology(s, {"streams": {f"{uniq}.events": ["workers"]}, "channels": []})
    bus = EventBus(build_client(s), s, topo, blocking=build_client(s, other.url, block_ms=30_000))
    stream = f"{uniq}.events"
    try:
        await bus.check_server()
        assert await bus.create_group(stream, "adhoc")  # on the writing node only
        await bus._ctx.blocking.xadd(stream, {"x": "1"})  # the other node has the stream, not the group
        with pytest.raises(Unavailable) as exc:
            await bus.read(stream, "adhoc", "w", count=1, block_ms=100)
        assert "does not hold it" in exc.value.message and "retry" in exc.value.message
        # and once the group is really gone from the writing node too, the read says so
        await bus.redis.xgroup_destroy(stream, "adhoc")
        with pytest.raises(NotFound):
            await bus.read(stream, "adhoc", "w", count=1, block_ms=100)
    finally:
        await bus.close()
        other.stop()
