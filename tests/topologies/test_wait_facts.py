"""The WAIT facts core/connection.py is built on, pinned against real servers (a master with one
replica): Redis 7.0 (the sentinel set's data nodes) and Valkey 9.1 (a pair started here).

* WAIT counts the writes of the connection that sends it: a write and its WAIT in one
  non-transactional pipeline is the only way that works;
* a WAIT on another connection answers at once with a count that says nothing about the write;
* inside MULTI/EXEC it never blocks;
* in a Lua script Redis refuses it, and Valkey lets it run without blocking, counting only the
  writes before the script.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis import exceptions as rexc

from .servers import HOST, ServerProcess, valkey_server_bin, wait_until


class Pair:
    def __init__(self, master: ServerProcess, replica: ServerProcess, kind: str) -> None:
        self.master, self.replica, self.kind = master, replica, kind

    @asynccontextmanager
    async def client(self) -> AsyncIterator[aioredis.Redis]:
        c = aioredis.Redis(host=HOST, port=self.master.port, decode_responses=True, single_connection_client=True)
        try:
            yield c
        finally:
            await c.aclose()

    @asynccontextmanager
    async def replica_frozen(self) -> AsyncIterator[None]:
        """SIGSTOP the replica: it cannot acknowledge anything until SIGCONT."""
        assert self.replica.proc is not None
        self.replica.proc.send_signal(19)
        try:
            yield
        finally:
            self.replica.proc.send_signal(18)


@pytest.fixture(scope="module")
def valkey_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    d: Path = tmp_path_factory.mktemp("valkey-pair")
    binary = valkey_server_bin()
    master = ServerProcess(binary, d / "master", name="valkey-master").start()
    replica = ServerProcess(binary, d / "replica", ["--replicaof", HOST, str(master.port)], name="valkey-replica")
    try:
        replica.start()
        wait_until(lambda: replica.info("replication").get("master_link_status") == "up", 15, "the valkey replica to sync")
        yield Pair(master, replica, "valkey")
    finally:
        replica.kill9()
        master.kill9()


@pytest.fixture(params=["redis", "valkey"])
def pair(request, redis_sentinel) -> Pair:
    if request.param == "valkey":
        return request.getfixturevalue("valkey_pair")
    redis_sentinel.wait_healthy()
    return Pair(redis_sentinel.master(), redis_sentinel.replicas()[0], "redis")


async def test_pipeline_write_then_wait_counts_that_write(pair):
    async with pair.client() as c:
        async with c.pipeline(transaction=False) as p:
            p.xadd("facts", {"f": "v"})
            p.execute_command("WAIT", 1, 2000)
            assert (await p.execute())[1] == 1
        async with pair.replica_frozen(), c.pipeline(transaction=False) as p:
            p.xadd("facts", {"f": "v"})
            p.execute_command("WAIT", 1, 200)
            assert (await p.execute())[1] == 0  # blocked its 200 ms, nobody confirmed


async def acked_write(c: aioredis.Redis) -> None:
    """One write on ``c``'s single connection, confirmed by the replica."""
    async with c.pipeline(transaction=False) as p:
        p.xadd("facts", {"f": "earlier"})
        p.execute_command("WAIT", 1, 2000)
        assert (await p.execute())[1] == 1


async def test_wait_on_another_connection_says_nothing(pair):
    async with pair.client() as writer, pair.client() as other:
        await acked_write(other)  # a pooled connection that wrote earlier
        async with pair.replica_frozen():
            await writer.xadd("facts", {"f": "v"})  # never reaches the frozen replica
            assert await other.execute_command("WAIT", 1, 200) == 1  # a false "1" for that write


async def test_wait_in_multi_does_not_block(pair):
    async with pair.client() as c, pair.replica_frozen():
        async with c.pipeline(transaction=True) as p:
            p.xadd("facts", {"f": "v"})
            p.execute_command("WAIT", 1, 0)  # 0: wait forever, were it to block
            # inside MULTI it answers at once: a blocking WAIT would hang here until the guard fails the test
            _, acked = await asyncio.wait_for(p.execute(), 30)
        assert acked in (0, 1)  # whatever it counts, it is not a wait for this transaction's write


async def test_wait_in_a_script(pair):
    script = "redis.call('XADD', KEYS[1], '*', 'f', 'v') return redis.call('WAIT', 1, 5000)"
    async with pair.client() as c:
        await acked_write(c)
        async with pair.replica_frozen():
            if pair.kind == "redis":
                with pytest.raises(rexc.ResponseError, match="not allowed from script"):
                    await c.eval(script, 1, "facts")
            else:  # allowed, does not wait (5 s otherwise), and counts the earlier write: a false "1"
                assert await c.eval(script, 1, "facts") == 1
