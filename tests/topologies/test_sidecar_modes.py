"""The bus (core) in each mode on real topologies: the seven default streams over several shards,
publish / read / nack / dead letters / replay / trim / status / sweep on every shard, Pub/Sub on a
cluster, replica-acknowledged publishes on the sentinel set and the cluster, a bad mode fails at start."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import pytest
from friday_bus.core import ConfigError, EventBus, PublishRequest, Runtime, Settings, Unavailable, build_topology
from friday_bus.core.settings import DEFAULT_STREAMS
from redis.crc import key_slot

from .servers import settings_kwargs


def _settings(env: dict[str, str], **more) -> Settings:
    return Settings(_env_file=None, **settings_kwargs(env, key_prefix=f"friday:{uuid.uuid4().hex[:8]}:", **more))


def test_the_seven_default_streams_land_on_more_than_one_shard(redis_cluster):
    owners = {redis_cluster.node_for_slot(key_slot(s.encode())).address for s in DEFAULT_STREAMS}
    assert len(owners) > 1, owners


async def test_bus_on_a_cluster_streams_on_every_shard(redis_cluster):
    u = uuid.uuid4().hex[:6]
    keys = redis_cluster.keys_on_every_master(f"{u}.s")  # master address -> a key it owns
    streams = {name: {"groups": ["g"], "max_deliveries": 1, "retention": 1} for name in keys.values()}
    s = _settings(redis_cluster.env(), claim_interval_ms=100)
    bus = EventBus.from_url(None, s, build_topology(s, {"streams": streams, "channels": [f"{u}.info"]}))
    try:
        await bus.check_server()
        await bus.setup()
        # one batch over every shard: split by slot, every event written once
        results = await bus.publish_batch([PublishRequest(n, {"i": i}, event_id=f"e{i}") for i, n in enumerate(streams)])
        again = await bus.publish_batch([PublishRequest(n, {"i": i}, event_id=f"e{i}") for i, n in enumerate(streams)])
        assert [r.entry_id for r in again] == [r.entry_id for r in results] and all(r.duplicate for r in again)
        for n in streams:
            [d] = await bus.read(n, "g", "w", count=5)
            out = await bus.nack(n, "g", d.entry_id, "boom")
            assert out.outcome == "dead_lettered"
            [dl] = await bus.dlq_list(n)
            [rep] = await bus.dlq_replay(n, "all")
            [d2] = await bus.read(n, "g", "w", count=5)
            assert d2.entry_id == rep.new_entry_id and dl.reason == "boom"
            assert await bus.ack(n, "g", [d2.entry_id]) == 1
            await bus.publish(PublishRequest(n, {"x": 1}))
            [d3] = await bus.read(n, "g", "w", count=5)
            await bus.ack(n, "g", [d3.entry_id])
            report = await bus.trim(n)
            assert report.length_after <= 1
            await bus.sweep_dead(n)
        st = await bus.status()
        assert {x.name for x in st.streams} == set(streams) and st.redis_version
        desc = (await bus.describe()).as_dict()
        assert desc["mode"] == "cluster" and len(desc["masters"]) == 3
    finally:
        await bus.close()


async def test_pubsub_on_a_cluster(redis_cluster):
    u = uuid.uuid4().hex[:6]
    s = _settings(redis_cluster.env())
    bus = EventBus.from_url(None, s, build_topology(s, {"streams": {}, "channels": [f"{u}.info"]}))
    try:
        sub = bus.subscribe([f"{u}.info"])
        got = asyncio.ensure_future(sub.__anext__())
        for _ in range(50):
            await asyncio.sleep(0.1)
            r = await bus.publish(PublishRequest(f"{u}.info", {"hello": 1}))
            if got.done() or r.receivers:
                break
        msg = await asyncio.wait_for(got, 5)
        assert msg.payload == {"hello": 1}
        await sub.aclose()
    finally:
        await bus.close()


async def _replica_ack_round(env: dict[str, str], replica_pid: int, stream_name: str) -> None:
    s = _settings(env, min_replicas_ack=1, replica_ack_timeout_ms=300)
    bus = EventBus.from_url(None, s, build_topology(s, {"streams": {stream_name: ["g"]}}))
    try:
        await bus.check_server()
        await bus.setup()
        ok = await bus.publish(PublishRequest(stream_name, {"n": 1}))
        assert ok.entry_id
        assert await bus.create_group(stream_name, "made-confirmed", "all") is True  # the replica confirmed it
        os.kill(replica_pid, signal.SIGSTOP)
        try:
            with pytest.raises(Unavailable) as exc:
                await bus.publish(PublishRequest(stream_name, {"n": 2}, event_id="k-2"))
            assert "may or may not exist" in exc.value.message and "same event_id" in exc.value.message
            # a group created on request waits for the replica too: refused, but made on the master
            with pytest.raises(Unavailable) as exc:
                await bus.create_group(stream_name, "made-unconfirmed", "all")
            assert "not confirmed by 1 replica(s)" in exc.value.message and "retry" in exc.value.message
        finally:
            os.kill(replica_pid, signal.SIGCONT)
        assert await bus.create_group(stream_name, "made-unconfirmed", "all") is False  # the retry: already there
        for _ in range(50):  # the retry with the same key, once the replica is back
            try:
                again = await bus.publish(PublishRequest(stream_name, {"n": 2}, event_id="k-2"))
                break
            except Unavailable:
                await asyncio.sleep(0.1)
        assert again.duplicate  # written by the refused attempt, not twice
        assert await bus.redis.xlen(stream_name) == 2
    finally:
        await bus.close()


async def test_replica_ack_on_the_sentinel_set(redis_sentinel):
    replica = redis_sentinel.replicas()[0]
    await _replica_ack_round(redis_sentinel.env(), replica.pid, f"ack.{uuid.uuid4().hex[:6]}")


async def test_replica_ack_on_the_cluster(redis_cluster):
    name = f"ack.{uuid.uuid4().hex[:6]}"
    replica = redis_cluster.replica_of(redis_cluster.node_for_key(name))
    await _replica_ack_round(redis_cluster.env(), replica.pid, name)


async def test_a_bad_mode_fails_at_start_with_the_fix(redis_cluster, standalone_redis):
    s = _settings({"FRIDAY_REDIS_MODE": "standalone", "FRIDAY_REDIS_URL": redis_cluster.url})
    with pytest.raises(ConfigError, match="FRIDAY_REDIS_MODE=cluster"):
        await Runtime(s).start(loops=False)
    s = _settings({"FRIDAY_REDIS_MODE": "cluster", "FRIDAY_REDIS_URL": standalone_redis.url})
    with pytest.raises(ConfigError, match="FRIDAY_REDIS_MODE=standalone"):
        await Runtime(s).start(loops=False)


async def test_runtime_in_sentinel_mode_says_which_master(redis_sentinel):
    rt = Runtime(_settings(redis_sentinel.env()))
    await rt.start(loops=False)
    try:
        ready = await rt.check_ready()
        assert ready.mode == "sentinel" and ready.masters == (redis_sentinel.reported_master(),)
        await rt.refresh_master_once()
        assert rt.sentinel_master == redis_sentinel.reported_master()
    finally:
        await rt.stop()
