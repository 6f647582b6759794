"""Publishing against a real Redis: idempotency, types, the seed's wire format, rejected input, hard caps."""

from __future__ import annotations

import pytest
from friday_bus.core import BacklogFull, InvalidArgument, NotFound, PublishRequest

from .helpers import pub
from .seed_format import seed_consume_one, seed_publish


async def test_idempotency_key(make_bus, uniq):
    bus = await make_bus(idempotency_window_s=60)
    s = f"{uniq}.events"
    await bus.setup()
    first = await bus.publish(PublishRequest(s, {"x": 1}, event_id="evt-1"))
    second = await bus.publish(PublishRequest(s, {"x": 2}, event_id="evt-1"))
    assert second.entry_id == first.entry_id and second.duplicate and not first.duplicate
    assert await bus.redis.xlen(s) == 1
    batch = await bus.publish_batch([PublishRequest(s, {"y": 1}, event_id="evt-2"), PublishRequest(s, {"y": 2}, event_id="evt-2")])
    assert batch[0].entry_id == batch[1].entry_id and batch[1].duplicate
    assert await bus.redis.xlen(s) == 2
    ttl = await bus.redis.ttl(bus.keys.idem(s, "evt-1"))
    assert 0 < ttl <= 60


async def test_lossless_types(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    payload = {"b": True, "i": 3, "f": 2.5, "n": None, "o": {"deep": [1, True, None, {"x": "y"}]}, "s": "3", "big": 2**64}
    await pub(bus, s, payload)
    [d] = await bus.read(s, "workers", "w")
    assert d.payload == payload and type(d.payload["b"]) is bool and type(d.payload["i"]) is int and d.payload["s"] == "3"


async def test_seed_publisher_events_are_consumed(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    await seed_publish(bus.redis, s, {"email_id": "abc123", "category": "medical", "has_attachments": True, "tags": ["a", "b"], "meta": {"k": 1}})
    [d] = await bus.read(s, "workers", "w")
    assert d.payload == {"email_id": "abc123", "category": "medical", "has_attachments": "True", "tags": ["a", "b"], "meta": {"k": 1}}
    assert d.meta.encoding == "legacy" and d.meta.published_at_ms == int(d.entry_id.split("-")[0])


async def test_seed_consumer_reads_sidecar_events(make_bus, uniq):
    bus = await make_bus({"events": ["workers", "legacy-consumer"]})
    s = f"{uniq}.events"
    await bus.setup()
    payload = {"email_id": "abc123", "priority": "high", "has_attachments": True, "count": 2, "meta": {"k": [1, 2]}}
    eid = await pub(bus, s, payload, source="n8n")
    got_id, data = await seed_consume_one(bus.redis, s, "legacy-consumer", "worker-1")
    assert got_id == eid
    for key, value in payload.items():
        assert data[key] == (value if isinstance(value, dict) else str(value))


@pytest.mark.parametrize("payload, fragment", [
    ([1], "JSON object"), ({"": 1}, "non-empty"), ({"_friday_ts": 1}, "reserved"), ({"big": "x" * 300}, "over the"),
])
async def test_rejected_inputs_write_nothing(make_bus, uniq, payload, fragment):
    bus = await make_bus(max_payload_bytes=200)
    s = f"{uniq}.events"
    await bus.setup()
    with pytest.raises(InvalidArgument) as exc:
        await bus.publish(PublishRequest(s, payload))
    assert fragment in exc.value.message
    with pytest.raises(InvalidArgument):  # one bad event rejects the whole batch
        await bus.publish_batch([PublishRequest(s, {"ok": 1}), PublishRequest(s, payload)])
    assert await bus.redis.xlen(s) == 0


async def test_unknown_stream_and_bad_names_write_nothing(make_bus, uniq):
    bus = await make_bus()
    with pytest.raises(NotFound):
        await bus.publish(PublishRequest(f"{uniq}.nope", {"x": 1}))
    for bad in ("a*b", "x{y}", "a:b", "a\x00", "x" * 10_000):
        with pytest.raises(InvalidArgument):
            await bus.publish(PublishRequest(bad, {"x": 1}))
    with pytest.raises(InvalidArgument):
        await bus.publish(PublishRequest(f"{uniq}.events", {"x": 1}, event_id=""))
    assert await bus.redis.exists(f"{uniq}.nope") == 0
    assert await bus.redis.keys(f"*{uniq}*") == []


async def test_unknown_streams_allowed_by_topology(make_bus, uniq):
    bus = await make_bus(allow_unknown_streams=True)
    r = await bus.publish(PublishRequest(f"{uniq}.adhoc", {"x": 1}))
    assert r.entry_id and await bus.redis.xlen(f"{uniq}.adhoc") == 1


async def test_backlog_hard_cap(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "retention": 2, "max_backlog": 3}})
    s = f"{uniq}.events"
    await bus.setup()
    for i in range(3):
        await pub(bus, s, {"i": i})
    with pytest.raises(BacklogFull) as exc:
        await pub(bus, s, {"i": 3})
    assert "hard cap" in exc.value.message
    with pytest.raises(BacklogFull):
        await bus.publish_batch([PublishRequest(s, {"i": 3})])
    assert await bus.redis.xlen(s) == 3
    got = await bus.read(s, "workers", "w", count=10)
    await bus.ack(s, "workers", [d.entry_id for d in got])
    await bus.trim(s)
    assert await pub(bus, s, {"i": 4})


async def test_a_batch_is_counted_once_per_target_with_every_event(make_bus, uniq):
    """The observer hears one call per (target, kind, duplicate) of a batch, with the number of
    events: metrics count every event, without one Prometheus lookup per event."""
    from friday_bus.core import BusObserver

    calls: list[tuple[str, str, bool, int]] = []

    class Recorder(BusObserver):
        def published(self, target, kind, seconds, duplicate, n=1):
            assert seconds >= 0
            calls.append((target, kind, duplicate, n))

    bus = await make_bus({"a": ["g"], "b": ["g"]})
    bus._ctx.observer = Recorder()
    a, b = f"{uniq}.a", f"{uniq}.b"
    reqs = [PublishRequest(target=t, payload={"i": i}) for i, t in enumerate([a, b, a, a, b])]
    reqs.append(PublishRequest(target=a, payload={"k": 1}, event_id="once"))
    await bus.publish_batch(reqs)
    await bus.publish_batch([PublishRequest(target=a, payload={"k": 1}, event_id="once")])  # a duplicate
    assert sorted(calls) == sorted([(a, "stream", False, 4), (b, "stream", False, 2), (a, "stream", True, 1)])
