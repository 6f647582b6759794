"""One scenario suite, run through each door (gRPC with the Python client, HTTP with httpx)
against the real sidecar process. Cross-door scenarios publish on one door and consume on
the other, both ways."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest

from .doors import WAIT_S, Door


async def until_listening(pub: Door, channel: str, inbox: asyncio.Queue, tag: str) -> None:
    """Pub/Sub is at most once: publish markers until this listener demonstrably receives one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while loop.time() < deadline:
        await pub.publish_info(channel, {"marker": tag})
        try:
            m = await asyncio.wait_for(inbox.get(), 0.5)
        except TimeoutError:
            continue
        if m.get("marker") == tag:
            return
    pytest.fail(f"the listener on {channel} never received a marker within {WAIT_S:.0f} s")


# Types that a lossy transport would change: ints beyond 2^53, whole floats, nulls, nesting.
ODD = {
    "int": 3, "zero": 0, "negative": -12, "big": 2**63 + 7, "float": 1.5, "whole_float": 2.0, "tiny": 1e-300,
    "true": True, "false": False, "null": None, "text": "héllo \u2603", "empty": "", "numeric_text": "42",
    "json_text": '{"not": "parsed"}', "nested": {"a": [1, 2.5, None, {"b": False, "c": "x"}], "d": {}}, "list": [],
}
META = {"idempotency_key": "idem-1", "correlation_id": "corr-1", "source": "conformance"}


def types_of(value):
    if isinstance(value, dict):
        return {k: types_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [types_of(v) for v in value]
    return type(value).__name__


async def new_stream(door: Door, names, *groups: str) -> str:
    """A new stream (``names()``: unique; on the cluster successive ones are on different shards)."""
    stream = names()
    for g in groups or ("workers",):
        assert await door.create_group(stream, g, "new") is True
    return stream


# ------------------------------------------------------------------------------ one door


async def test_publish_consume_ack(doors, door_kind, names):
    door = doors(door_kind)
    s = await new_stream(door, names)
    ids = [await door.publish(s, {"n": i}) for i in range(3)]
    c = door.consumer(s, "workers", "c1")
    got = await c.take(3)
    assert [g.id for g in got] == ids and [g.payload for g in got] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert all(g.delivery_count == 1 and g.consumer == "c1" for g in got)
    assert await door.pending(s, "workers") == 3
    for g in got:
        await c.ack(g)
    assert await door.pending(s, "workers") == 0


async def test_nack_redelivers_then_dead_letters(doors, door_kind, names):
    door = doors(door_kind)  # the sidecar runs with max_deliveries 3 and a short backoff
    s = await new_stream(door, names)
    eid = await door.publish(s, {"job": "fails"})
    c = door.consumer(s, "workers", "c1", max_in_flight=1)
    outcomes = []
    for attempt in (1, 2, 3):
        [g] = await c.take(1)
        assert (g.id, g.delivery_count, g.payload) == (eid, attempt, {"job": "fails"})
        outcomes.append(await c.nack(g, f"failure {attempt}"))
    assert outcomes == ["retry", "retry", "dead_lettered"]
    [dl] = await door.dead_letters(s)
    assert dl == {"original_id": eid, "group": "workers", "reason": "failure 3", "payload": {"job": "fails"},
                  "delivery_count": 3}
    assert await door.pending(s, "workers") == 0


async def test_departed_subscriber_entries_are_reclaimed_by_another(doors, door_kind, names):
    door = doors(door_kind)  # claim_idle_ms is 500 on this sidecar
    s = await new_stream(door, names)
    ids = [await door.publish(s, {"n": i}) for i in range(2)]
    quitter = door.consumer(s, "workers", "quitter", max_in_flight=2)
    assert [g.id for g in await quitter.take(2)] == ids
    await quitter.leave()  # gone without acking: nothing is acked on its behalf
    assert await door.pending(s, "workers") == 2
    heir = door.consumer(s, "workers", "heir", max_in_flight=5)
    got = await heir.take(2)
    assert sorted(g.id for g in got) == ids
    assert all(g.delivery_count == 2 and g.consumer == "heir" for g in got)
    for g in got:
        await heir.ack(g)
    assert await door.pending(s, "workers") == 0


async def test_two_groups_each_get_every_event_and_one_consumer_per_event(doors, door_kind, names):
    door = doors(door_kind, steady=True)
    s = await new_stream(door, names, "g1", "g2")
    n = 40
    ids = [await door.publish(s, {"n": i}) for i in range(n)]
    for group in ("g1", "g2"):
        seen: list[tuple[str, str]] = []

        async def work(name: str, group: str = group, seen: list[tuple[str, str]] = seen) -> None:
            c = door.consumer(s, group, name, max_in_flight=3)
            while len(seen) < n:
                try:
                    [g] = await asyncio.wait_for(c.take(1), 2.0)
                except TimeoutError:
                    continue  # the other consumer took the rest
                assert g.delivery_count == 1
                seen.append((g.id, name))
                await c.ack(g)
            await c.leave()

        await asyncio.wait_for(asyncio.gather(work("c1"), work("c2")), WAIT_S)
        assert sorted(i for i, _ in seen) == sorted(ids), f"{group} missed or repeated events"
        assert len({i for i, _ in seen}) == n
        assert await door.pending(s, group) == 0


async def test_order_is_kept_with_one_consumer(doors, door_kind, names):
    door = doors(door_kind, steady=True)
    s = await new_stream(door, names)
    ids = [await door.publish(s, {"n": i}) for i in range(50)]
    c = door.consumer(s, "workers", "only", max_in_flight=7)
    got = []
    while len(got) < 50:
        batch = await c.take(1)
        got += batch
        for g in batch:
            await c.ack(g)
    assert [g.id for g in got] == ids and [g.payload["n"] for g in got] == list(range(50))


async def test_informational_channel(doors, door_kind):
    door = doors(door_kind)
    channel = "agent.completed"
    tag = uuid.uuid4().hex
    async with door.listen(channel) as inbox:
        await until_listening(door, channel, inbox, tag)
        receivers = await door.publish_info(channel, {"tag": tag, "n": 1, "f": 1.0, "none": None})
        assert receivers >= 1
        while True:
            m = await asyncio.wait_for(inbox.get(), WAIT_S)
            if m.get("tag") == tag:
                break
        assert m == {"tag": tag, "n": 1, "f": 1.0, "none": None}
        assert types_of(m) == {"tag": "str", "n": "int", "f": "float", "none": "NoneType"}


async def test_streams_on_several_shards_each_keep_their_own_entries(doors, door_kind, names, topology):
    """Three streams (on the cluster: one per shard), published interleaved; per stream every
    entry arrives once in order, and an idempotent repeat and a nack's retry (the companion
    keys: idempotency key, retry schedule, nack reason) work on each stream's own shard."""
    door = doors(door_kind, steady=True)
    streams = [await new_stream(door, names) for _ in range(3)]
    if topology.shard_of is not None:
        assert {topology.shard_of(s) for s in streams} == set(topology.shards)
    ids: dict[str, list[str]] = {s: [] for s in streams}
    for i in range(5):
        for s in streams:
            ids[s].append(await door.publish(s, {"s": s, "n": i}))
    for s in streams:
        assert await door.publish(s, {"s": s, "n": 0}, idempotency_key=f"k-{s}") == await door.publish(
            s, {"s": s, "n": 0}, idempotency_key=f"k-{s}")
        c = door.consumer(s, "workers", "c", max_in_flight=10)
        got = await c.take(6)
        assert [g.payload["s"] for g in got] == [s] * 6
        assert [g.id for g in got][:5] == ids[s]
        for g in got[1:]:
            await c.ack(g)
        assert await c.nack(got[0], "try again") == "retry"
        [again] = await c.take(1)
        assert (again.id, again.delivery_count) == (got[0].id, 2)
        await c.ack(again)
        await c.leave()
        assert await door.pending(s, "workers") == 0


# ------------------------------------------------------------------------------ across doors


PAIRS = list(itertools.product(["grpc", "http"], repeat=2))


@pytest.mark.parametrize(("pub_kind", "sub_kind"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
async def test_payload_types_are_lossless_across_doors(doors, names, pub_kind, sub_kind):
    pub, sub = doors(pub_kind, steady=True), doors(sub_kind, steady=True)
    s = await new_stream(pub, names)
    eid = await pub.publish(s, ODD, **META)
    c = sub.consumer(s, "workers", "x")
    [g] = await c.take(1)
    assert g.id == eid
    assert g.payload == ODD
    assert types_of(g.payload) == types_of(ODD)
    assert g.meta == {"event_id": "idem-1", "source": "conformance", "correlation_id": "corr-1"}
    await c.ack(g)
    # a repeat with the same idempotency key through the other door writes nothing
    assert await sub.publish(s, ODD, **META) == eid


@pytest.mark.parametrize(("pub_kind", "sub_kind"), [("grpc", "http"), ("http", "grpc")], ids=["grpc-to-http", "http-to-grpc"])
async def test_channel_messages_are_lossless_across_doors(doors, pub_kind, sub_kind):
    pub, sub = doors(pub_kind), doors(sub_kind)
    channel = "file.uploaded"
    tag = uuid.uuid4().hex
    async with sub.listen(channel) as inbox:
        await until_listening(pub, channel, inbox, tag)
        body = {**ODD, "tag": tag}
        await pub.publish_info(channel, body)
        while True:
            m = await asyncio.wait_for(inbox.get(), WAIT_S)
            if m.get("tag") == tag:
                break
        assert m == body and types_of(m) == types_of(body)
