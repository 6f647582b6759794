"""kill -9 of a master: the same client finds the new master by itself (sentinel, cluster), writes
succeed again without a new client, and what WAIT confirmed before the crash is still there.

These run after every other test of the session (marker ``topology_failover``) and leave the
topology healed (``heal_sentinel`` / ``heal_cluster``: the dead node restarted as a replica).
The figures (refused window) are printed and recorded as test properties; nothing asserts on
how long a failover took, only that it happened within the harness's bounded wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from friday_bus.core.connection import (
    build_client,
    close_client,
    describe,
    refresh_master,
    script_then_wait,
    write_then_wait,
)
from friday_bus.core.settings import Settings
from redis import exceptions as rexc

from .servers import FAILOVER_TIMEOUT_S, settings_kwargs

pytestmark = pytest.mark.topology_failover

RETRY_PAUSE_S = 0.05
REFRESH_S = 0.5
XADD_SCRIPT = "return redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])"
OTHER_SCRIPT = "return redis.call('INCR', KEYS[1] .. ':{' .. KEYS[1] .. '}')"


async def until_it_works(op: Callable[[], Awaitable[Any]], errors: Counter[str]) -> Any:
    """Retry ``op`` (refusals counted by error type) until it succeeds, within FAILOVER_TIMEOUT_S."""
    deadline = time.monotonic() + FAILOVER_TIMEOUT_S
    while True:
        try:
            return await op()
        except (rexc.RedisError, OSError) as exc:
            errors[type(exc).__name__] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"still refused after {FAILOVER_TIMEOUT_S:.0f} s: {errors}") from exc
            await asyncio.sleep(RETRY_PAUSE_S)


async def test_sentinel_kill9_master_same_client_finds_the_new_one(heal_sentinel, record_property):
    sset = heal_sentinel
    s = Settings(_env_file=None, **settings_kwargs(sset.env()))
    client = build_client(s)
    try:
        stream = f"fo.{uuid.uuid4().hex[:8]}"
        publish = client.register_script(XADD_SCRIPT)
        other = client.register_script(OTHER_SCRIPT)
        before = await script_then_wait(client, publish, [stream], ["before"], replicas=1, timeout_ms=2000)
        assert before.replicas == 1  # confirmed by the replica: must survive the crash
        assert await other(keys=[stream]) == 1

        old = sset.kill9_master()
        killed_at = time.monotonic()
        errors: Counter[str] = Counter()
        # the publish path (write + WAIT in one pipeline), retried on the same client until it works
        after = await until_it_works(
            lambda: script_then_wait(client, publish, [stream], ["after"], replicas=1, timeout_ms=100), errors)
        refused_s = time.monotonic() - killed_at
        assert after.replicas == 0  # written on the new master, which has no replica left to confirm it

        new = sset.wait_failover(old)
        assert new.address != old.address
        entries = [f["n"] for _, f in await client.xrange(stream)]
        assert entries == ["before", "after"]  # the confirmed entry survived; the new write went to the new master
        assert new.call("XLEN", stream) == 2
        assert await other(keys=[stream]) == 2  # a registered script: redis-py loads it on the new master (NOSCRIPT)

        d = await describe(client, s)
        assert d.master == new.address  # (its status may read "disconnected" for a moment: the sentinels re-link)
        old_entry = [n for n in d.nodes if n.address == old.address]
        assert old_entry and old_entry[0].role == "replica" and old_entry[0].status != "ok"  # known, and down

        sset.heal()  # the old master comes back as a replica of the new one
        again = await write_then_wait(client, ("XADD", stream, "*", "n", "healed"), key=stream, replicas=1, timeout_ms=2000)
        assert again.replicas == 1
        assert old.call("XLEN", stream) == 3

        record_property("sentinel_refused_s", round(refused_s, 2))
        record_property("sentinel_refusals", dict(errors))
        print(f"\nsentinel failover: writes refused for {refused_s:.2f} s after kill -9 ({dict(errors)}); "
              f"{old.address} -> {new.address}")
    finally:
        await close_client(client)


async def test_cluster_kill9_master_same_client_keeps_writing_every_shard(heal_cluster, record_property):
    cluster = heal_cluster
    s = Settings(_env_file=None, **settings_kwargs(cluster.env()))
    client = build_client(s)
    try:
        streams = cluster.keys_on_every_master(f"fo.{uuid.uuid4().hex[:6]}.")
        publish = client.register_script(XADD_SCRIPT)
        other = client.register_script(OTHER_SCRIPT)
        for stream in streams.values():
            ack = await script_then_wait(client, publish, [stream], ["before"], replicas=1, timeout_ms=2000)
            assert ack.replicas == 1
            assert await other(keys=[stream]) == 1

        victim_address, victim_stream = next(iter(streams.items()))
        victim = cluster.by_address(victim_address)
        heir = cluster.replica_of(victim)
        slots_before = {m.address: m.slots for m in (await describe(client, s)).masters}[victim.address]
        cluster.kill9(victim)
        killed_at = time.monotonic()
        errors: Counter[str] = Counter()
        refused: dict[str, float] = {}  # per shard: the last refusal, seconds after the kill
        written: Counter[str] = Counter()
        acks: dict[str, int] = {}
        deadline = killed_at + FAILOVER_TIMEOUT_S
        while True:  # rounds of one publish (write + WAIT) per shard, on the same client
            ok = 0
            for address, stream in streams.items():
                try:
                    ack = await script_then_wait(client, publish, [stream], ["after"], replicas=1, timeout_ms=100)
                except (rexc.RedisError, OSError) as exc:
                    errors[f"{'victim' if address == victim.address else 'other'}:{type(exc).__name__}"] += 1
                    refused[address] = time.monotonic() - killed_at
                    continue
                ok += 1
                written[stream] += 1
                acks[address] = ack.replicas
            if ok == len(streams):
                break
            assert time.monotonic() < deadline, f"still refused after {FAILOVER_TIMEOUT_S:.0f} s: {errors}"
            await asyncio.sleep(RETRY_PAUSE_S)

        new = cluster.wait_failover(victim)
        assert new is heir
        assert acks[victim.address] == 0 and all(n == 1 for a, n in acks.items() if a != victim.address)  # heir: no replica
        d = await describe(client, s)
        assert victim.address not in {m.address for m in d.masters} and len(d.masters) == 3
        assert {m.address: m.slots for m in d.masters}[heir.address] == slots_before
        assert [n.status for n in d.nodes if n.address == victim.address] not in (["ok"], [])
        for stream in streams.values():  # every confirmed entry survived, every acknowledged write is there
            assert [f["n"] for _, f in await client.xrange(stream)] == ["before"] + ["after"] * written[stream]
            assert await other(keys=[stream]) == 2  # registered script: NOSCRIPT on the heir handled by redis-py

        cluster.heal()
        again = await write_then_wait(client, ("XADD", victim_stream, "*", "n", "healed"), key=victim_stream,
                                      replicas=1, timeout_ms=2000)
        assert again.replicas == 1 and victim.call_readonly("XLEN", victim_stream) == 2 + written[victim_stream]

        record_property("cluster_refused_s", {a: round(t, 2) for a, t in refused.items()})
        record_property("cluster_refusals", dict(errors))
        shards = ", ".join(f"{'victim' if a == victim.address else a} {refused.get(a, 0.0):.2f} s" for a in streams)
        print(f"\ncluster failover: {victim.address} -> {heir.address}; writes refused after kill -9 until: "
              f"{shards} ({dict(errors)})")
    finally:
        await close_client(client)


def landed_on_new_master(sset: Any, old: Any, stream: str, value: str) -> bool:
    """``value`` is on the master the sentinels name (not ``old``), and did not come from ``old``
    (which, as long as it still acts as a master, would hold it too)."""
    master = sset.reported_master()
    if master is None or master == old.address:
        return False
    def values(node: Any) -> set[str]:
        return {f["i"] for _, f in node.call("XRANGE", stream, "-", "+")}
    if value not in values(sset.by_address(master)):
        return False
    return old.info("replication").get("role") == "slave" or value not in values(old)


async def refresh_every(client: Any, interval: float) -> None:
    while True:
        with contextlib.suppress(rexc.RedisError, OSError):
            await refresh_master(client)
        await asyncio.sleep(interval)


@pytest.mark.parametrize("refresh", [True, False], ids=["refresh_master-every-0.5s", "no-refresh"])
async def test_sentinel_failover_with_the_old_master_alive_loses_only_unconfirmed_writes(heal_sentinel, record_property, refresh):
    """SENTINEL FAILOVER while writing: the old master stays up, and until it is demoted a pooled
    connection may still write to it; those writes are not on the new master (and vanish when
    the old one resyncs from it). WAIT is what tells them apart: every write confirmed by a
    replica is on the new master (refusals allowed, losses of confirmed writes not); unconfirmed
    ones may be lost. With ``refresh_master`` called periodically the client moves over at once."""
    sset = heal_sentinel
    s = Settings(_env_file=None, **settings_kwargs(sset.env()))
    client = build_client(s)
    try:
        stream = f"mf.{uuid.uuid4().hex[:8]}"
        assert (await write_then_wait(client, ("XADD", stream, "*", "i", "0"), key=stream, replicas=1, timeout_ms=2000)).confirmed
        old = sset.master()
        refresher = asyncio.create_task(refresh_every(client, REFRESH_S)) if refresh else None
        next(x for x in sset.sentinels if x.alive).call("SENTINEL", "FAILOVER", sset.name)
        started = time.monotonic()
        confirmed: list[str] = ["0"]
        unconfirmed: list[str] = []
        errors: Counter[str] = Counter()
        deadline = time.monotonic() + FAILOVER_TIMEOUT_S
        i = 0
        while True:
            i += 1
            try:
                ack = await write_then_wait(client, ("XADD", stream, "*", "i", str(i)), key=stream, replicas=1, timeout_ms=200)
            except (rexc.RedisError, OSError) as exc:
                errors[type(exc).__name__] += 1
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            finally:
                assert time.monotonic() < deadline, f"no confirmed write on a new master within {FAILOVER_TIMEOUT_S:.0f} s"
            (confirmed if ack.confirmed else unconfirmed).append(str(i))
            if landed_on_new_master(sset, old, stream, str(i)):
                break  # the client writes to the new master now (unconfirmed until the old one follows it)
        switched_s = time.monotonic() - started
        if refresher is not None:
            refresher.cancel()
        new = sset.master()
        assert new is not old
        final = [f["i"] for _, f in new.call("XRANGE", stream, "-", "+")]
        assert set(confirmed) <= set(final), f"confirmed writes lost: {sorted(set(confirmed) - set(final), key=int)}"
        lost = sorted(set(unconfirmed) - set(final), key=int)
        record_property("manual_failover", {"confirmed": len(confirmed), "unconfirmed": len(unconfirmed),
                                            "unconfirmed_lost": len(lost), "refusals": dict(errors),
                                            "first_write_on_new_master_s": round(switched_s, 2)})
        print(f"\nsentinel manual failover (old master alive, {'refresh_master every 0.5 s' if refresh else 'no refresh'}): first write on the new master "
              f"{switched_s:.2f} s after SENTINEL FAILOVER; {len(confirmed)} writes confirmed, all kept; "
              f"{len(unconfirmed)} unconfirmed, {len(lost)} of them lost; refusals {dict(errors)}")
    finally:
        await close_client(client)
