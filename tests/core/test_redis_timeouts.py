"""Redis timeouts come from the settings (issue 12, section 3), not from redis-py's defaults:
FRIDAY_REDIS_SOCKET_TIMEOUT_S bounds every command on a frozen Redis (Unavailable, retriable),
and a blocking read (XREADGROUP / XREAD ... BLOCK, up to MAX_BLOCK_MS) is never cut by it.

Each test runs its own redis-server, so that freezing it (SIGSTOP) touches nothing else."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from friday_bus.core import EventBus, PublishRequest, Settings, Unavailable, build_topology

from tests.conftest import RedisServer

SOCKET_TIMEOUT_S = 1.0
GUARD_S = 4.0
"""A bound on waiting for the answer, so that a hang fails the test instead of blocking it. Below
redis-py's own default socket timeout (5 s): only the setting can make the answer come in time."""


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
    server.stop()


@pytest.fixture
async def bus_on(own_redis, uniq, monkeypatch):
    monkeypatch.setenv("FRIDAY_REDIS_URL", own_redis.url)
    monkeypatch.setenv("FRIDAY_REDIS_SOCKET_TIMEOUT_S", str(SOCKET_TIMEOUT_S))
    monkeypatch.setenv("FRIDAY_REDIS_CONNECT_TIMEOUT_S", str(SOCKET_TIMEOUT_S))
    # One long BLOCK per read (the claim schedule would otherwise cut reads into 1 s waits).
    s = Settings(_env_file=None, key_prefix=f"friday:{uniq}:", claim_interval_ms=30_000, replica_ack_timeout_ms=100)
    assert s.redis_socket_timeout_s == SOCKET_TIMEOUT_S
    bus = EventBus.from_url(None, s, build_topology(s, {"streams": {f"{uniq}.events": ["workers"]}, "channels": []}))
    await bus.check_server()
    await bus.setup()
    yield bus
    await bus.close()


async def test_a_frozen_redis_makes_a_publish_unavailable(bus_on, own_redis, uniq):
    s = f"{uniq}.events"
    await bus_on.publish(PublishRequest(s, {"i": 0}))  # a pooled connection is open
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    try:
        with pytest.raises(Unavailable) as e:
            await asyncio.wait_for(bus_on.publish(PublishRequest(s, {"i": 1})), GUARD_S)
        assert e.value.retriable
        with pytest.raises(Unavailable):
            await asyncio.wait_for(bus_on.stream_status(s), GUARD_S)
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    # thawed: the bus works again on fresh connections
    assert (await bus_on.publish(PublishRequest(s, {"i": 2}))).entry_id


async def test_a_blocking_read_longer_than_the_socket_timeout_is_not_cut(bus_on, uniq):
    s = f"{uniq}.events"
    block_ms = int(SOCKET_TIMEOUT_S * 1000 * 2.5)
    assert await bus_on.read(s, "workers", "w1", count=1, block_ms=block_ms) == []
    assert await bus_on.peek_next(s, block_ms=block_ms) is None

    async def publish_later() -> str:
        await asyncio.sleep(SOCKET_TIMEOUT_S * 1.5)
        return (await bus_on.publish(PublishRequest(s, {"late": True}))).entry_id

    later = asyncio.create_task(publish_later())
    got = await bus_on.read(s, "workers", "w1", count=1, block_ms=block_ms * 2)
    assert [d.entry_id for d in got] == [await later]
