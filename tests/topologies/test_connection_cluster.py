"""core/connection.py on a real 3-master Redis Cluster (one replica each): routing, scripts, describe,
MOVED / ASK, write-then-WAIT on the node that took the write."""

from __future__ import annotations

import uuid

import pytest
from friday_bus.core.connection import (
    CLUSTER_RETRIES,
    build_client,
    client_mode,
    close_client,
    describe,
    script_then_wait,
    write_then_wait,
)
from friday_bus.core.limits import MAX_REDIS_CONNECTIONS
from friday_bus.core.packing import PackedConnection
from friday_bus.core.settings import Settings
from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from .servers import Cluster, settings_kwargs

PAIR_SCRIPT = """
local id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])
redis.call('HSET', KEYS[2], id, ARGV[1])
return id
"""


def settings_for(cluster: Cluster, **more) -> Settings:
    return Settings(_env_file=None, **settings_kwargs(cluster.env(), **more))


@pytest.fixture
async def client(redis_cluster):
    c = build_client(settings_for(redis_cluster))
    try:
        yield c
    finally:
        await close_client(c)


def uniq() -> str:
    return uuid.uuid4().hex[:8]


async def test_client_is_a_cluster_client_with_the_common_options(client, redis_cluster):
    assert isinstance(client, RedisCluster) and client_mode(client) == "cluster"
    assert client.retry.get_retries() == CLUSTER_RETRIES
    await client.initialize()
    # discovered from one node's URL (redis-py keeps only the masters unless it reads from replicas)
    assert sorted(n.name for n in client.get_primaries()) == sorted(m.address for m in redis_cluster.masters())
    kw = client.get_primaries()[0].connection_kwargs
    assert (kw["decode_responses"], kw["encoding_errors"], kw["health_check_interval"], kw["socket_keepalive"]) == (True, "replace", 30, True)
    assert client.get_primaries()[0].max_connections == MAX_REDIS_CONNECTIONS
    # every node's connections pack commands with hiredis (core/packing.py)
    assert {n.connection_class for n in client.get_primaries()} == {PackedConnection}


async def test_streams_on_every_shard(client, redis_cluster):
    keys = redis_cluster.keys_on_every_master(f"email.{uniq()}.")
    assert len(keys) == 3
    for address, stream in keys.items():
        await client.xgroup_create(stream, "g", id="0", mkstream=True)
        entry_id = await client.xadd(stream, {"shard": address})
        reply = await client.xreadgroup("g", "c", {stream: ">"}, count=10)
        assert reply[0][1] == [(entry_id, {"shard": address})]
        assert await client.xack(stream, "g", entry_id) == 1
        # the entry really is on the master the harness computed, not just somewhere
        assert redis_cluster.by_address(address).call("XLEN", stream) == 1


async def test_script_on_a_tagged_pair_of_keys(client, redis_cluster):
    stream = f"email.{uniq()}"
    companion = f"friday:retry:{{{stream}}}:g"  # the issue-8 naming: the stream's name as the tag
    assert key_slot(stream.encode()) == key_slot(companion.encode())
    script = client.register_script(PAIR_SCRIPT)
    entry_id = await script(keys=[stream, companion], args=["1"])
    assert await client.hget(companion, entry_id) == "1"
    with pytest.raises(rexc.RedisClusterException, match="(?i)slot"):  # two slots: refused
        await script(keys=[stream, f"friday:retry:{stream}:g"], args=["2"])


async def test_describe_reports_masters_slots_and_replicas(client, redis_cluster):
    d = await describe(client, settings_for(redis_cluster))
    assert d.mode == "cluster" and d.master is None and d.server_version == redis_cluster.masters()[0].version()
    assert sorted(m.address for m in d.masters) == sorted(m.address for m in redis_cluster.masters())
    assert sum(b - a + 1 for m in d.masters for a, b in m.slots) == 16384
    replicas = [n for n in d.nodes if n.role == "replica"]
    assert len(replicas) == 3 and all(n.status == "ok" for n in d.nodes)
    assert {r.master for r in replicas} == {m.address for m in d.masters}
    for r in replicas:
        assert redis_cluster.replica_of(redis_cluster.by_address(r.master)).address == r.address


async def test_write_then_wait_on_every_shard_counts_its_replica(client, redis_cluster):
    for stream in redis_cluster.keys_on_every_master(f"ack.{uniq()}.").values():
        ack = await write_then_wait(client, ("XADD", stream, "*", "f", "v"), key=stream, replicas=1, timeout_ms=2000)
        assert (ack.replicas, ack.confirmed) == (1, True)
        assert redis_cluster.replica_of(redis_cluster.node_for_key(stream)).call_readonly("XLEN", stream) == 1  # really replicated
        companion = f"friday:idem:{{{stream}}}"
        src_ack = await script_then_wait(client, client.register_script(PAIR_SCRIPT), [stream, companion], ["7"],
                                         replicas=1, timeout_ms=2000)
        assert src_ack.replicas == 1 and await client.hget(companion, src_ack.result) == "7"


async def test_write_then_wait_script_fallback_when_no_node_knows_it(client, redis_cluster):
    stream = f"ack.{uniq()}"
    src = f"-- {uniq()}\nreturn redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])"
    ack = await script_then_wait(client, src, [stream], ["1"], replicas=1, timeout_ms=2000)  # NOSCRIPT -> EVAL
    assert ack.replicas == 1 and await client.xlen(stream) == 1
    src0 = f"-- {uniq()}\nreturn redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])"
    ack = await script_then_wait(client, src0, [stream], ["2"], replicas=0, timeout_ms=2000)  # no WAIT, same fallback
    assert (ack.replicas, ack.confirmed) == (0, True) and await client.xlen(stream) == 2


async def test_moved_after_a_resharding(client, redis_cluster):
    """The client's slot map is stale (a slot moved to another master): both a plain command and
    write_then_wait follow MOVED, and WAIT counts the new owner's replica."""
    key = redis_cluster.empty_slot_key(f"mv.{uniq()}.")
    slot = key_slot(key.encode())
    await client.initialize()
    owner = redis_cluster.node_for_key(key)
    target = next(m for m in redis_cluster.masters() if m is not owner)
    assert client.get_node_from_key(key).name == owner.address
    redis_cluster.move_empty_slot(slot, target)
    try:
        assert client.get_node_from_key(key).name == owner.address  # stale, as after a resharding
        ack = await write_then_wait(client, ("XADD", key, "*", "f", "v"), key=key, replicas=1, timeout_ms=2000)
        assert ack.replicas == 1 and client.get_node_from_key(key).name == target.address
        assert target.call("XLEN", key) == 1
        other = build_client(settings_for(redis_cluster))  # a second stale client: redis-py follows MOVED itself
        try:
            await other.initialize()
            other.nodes_manager.slots_cache[slot] = [other.get_node(node_name=owner.address)]
            assert await other.xlen(key) == 1
        finally:
            await close_client(other)
        await client.delete(key)
    finally:
        redis_cluster.move_empty_slot(slot, owner)


async def test_ask_during_a_migration(client, redis_cluster):
    """A slot being migrated: the owner answers ASK for a key it does not hold; the write and its
    WAIT go to the importing node (after ASKING) and count that node's replica."""
    key = redis_cluster.empty_slot_key(f"ask.{uniq()}.")
    slot = key_slot(key.encode())
    owner = redis_cluster.node_for_key(key)
    target = next(m for m in redis_cluster.masters() if m is not owner)
    redis_cluster.begin_migration(slot, target)
    try:
        ack = await write_then_wait(client, ("XADD", key, "*", "f", "v"), key=key, replicas=1, timeout_ms=2000)
        assert ack.replicas == 1
        assert owner.call("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
        with target.client(single_connection_client=True) as c:
            c.execute_command("ASKING")
            assert c.xlen(key) == 1
    finally:
        redis_cluster.abort_migration(slot, owner, target, keys=[key])
