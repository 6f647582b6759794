"""W3C trace context stored with the event (issue 10): the validation (a pure function) and the
round trip against a real Redis: read, redelivery after a nack, dead letter, replay, channels."""

from __future__ import annotations

import pytest
from friday_bus.core import InvalidArgument, PublishRequest, codec
from friday_bus.core.models import EventMeta

from .helpers import pub

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TS = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


# ------------------------------------------------------------------ validation (pure)
@pytest.mark.parametrize("tp,ts", [
    (None, None), (None, "anything: ignored"), (TP, None), (TP, TS), ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", None),
    (TP, "a=1"), (TP, "tenant@vendor=x y,  b=2 ,"), (TP, "k=" + "v" * 255),
])
def test_valid_trace_context(tp, ts):
    codec.validate_trace_context(tp, ts)


@pytest.mark.parametrize("tp,ts,field,words", [
    ("garbage", None, "traceparent", "malformed"),
    (TP.upper(), None, "traceparent", "malformed"),
    (TP + "-", None, "traceparent", "malformed"),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", None, "traceparent", "malformed"),
    ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None, "traceparent", "version ff"),
    ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None, "traceparent", "all-zero trace id"),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", None, "traceparent", "all-zero parent id"),
    (TP, "a=" + "b" * 511, "tracestate", "512-character limit"),
    (TP, "novalue", "tracestate", "malformed"),
    (TP, "UPPER=1", "tracestate", "malformed"),
    (TP, "a=b=c", "tracestate", "malformed"),
    (TP, " , ", "tracestate", "empty"),
    (TP, ",".join(f"k{i}=v" for i in range(33)), "tracestate", "33 members"),
    (TP, "a=x\x00", "tracestate", "malformed"),
])
def test_malformed_trace_context_refused(tp, ts, field, words):
    with pytest.raises(InvalidArgument) as e:
        codec.validate_trace_context(tp, ts)
    assert e.value.field == field and words in e.value.message


def test_codec_round_trip_and_seed_stores_nothing():
    meta = EventMeta(correlation_id="c", traceparent=TP, tracestate=TS)
    fields = codec.encode_event({"a": 1}, meta, 5)
    assert fields[codec.F_TRACEPARENT] == TP and fields[codec.F_TRACESTATE] == TS
    _, back = codec.decode_event("5-0", fields)
    assert (back.traceparent, back.tracestate, back.correlation_id) == (TP, TS, "c")
    assert codec.encode_event({"a": 1}, meta, 5, "seed") == {"a": "1"}
    assert codec.F_TRACEPARENT not in codec.encode_event({"a": 1}, EventMeta(), 5)
    _, none = codec.decode_event("5-0", codec.encode_event({"a": 1}, EventMeta(), 5))
    assert none.traceparent is None and none.tracestate is None


# ------------------------------------------------------------------ against Redis
async def test_publish_read_redeliver_dead_letter_replay_keep_it(make_bus, uniq):
    spec = {"events": {"groups": ["workers"], "max_deliveries": 2, "backoff": {"initial_ms": 1, "multiplier": 1, "max_ms": 1}}}
    bus = await make_bus(spec, claim_interval_ms=50)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"doc": "x"}, traceparent=TP, tracestate=TS)
    raw = (await bus.redis.xrange(s, eid, eid))[0][1]
    assert raw[codec.F_TRACEPARENT] == TP and raw[codec.F_TRACESTATE] == TS
    [d1] = await bus.read(s, "workers", "w", block_ms=1000)
    assert (d1.meta.traceparent, d1.meta.tracestate, d1.delivery_count) == (TP, TS, 1)
    assert (await bus.nack(s, "workers", eid, "boom")).outcome == "retry"
    [d2] = await bus.read(s, "workers", "w", block_ms=3000)
    assert (d2.entry_id, d2.delivery_count, d2.meta.traceparent, d2.meta.tracestate) == (eid, 2, TP, TS)
    assert (await bus.nack(s, "workers", eid, "final")).outcome == "dead_lettered"
    [dead] = await bus.dlq_list(s)
    assert (dead.meta.traceparent, dead.meta.tracestate) == (TP, TS)
    [replayed] = await bus.dlq_replay(s, [dead.dlq_id])
    [d3] = await bus.read(s, "workers", "w", block_ms=3000)
    assert d3.entry_id == replayed.new_entry_id != eid
    assert (d3.meta.traceparent, d3.meta.tracestate, d3.delivery_count) == (TP, TS, 1)


async def test_without_trace_context_none_is_stored(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"doc": "x"})
    raw = (await bus.redis.xrange(s, eid, eid))[0][1]
    assert not any(k in raw for k in (codec.F_TRACEPARENT, codec.F_TRACESTATE))
    [d] = await bus.read(s, "workers", "w", block_ms=1000)
    assert d.meta.traceparent is None and d.meta.tracestate is None


async def test_empty_tracestate_is_none_and_a_tracestate_alone_is_ignored(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    await pub(bus, s, {"doc": "x"}, traceparent=TP, tracestate="")
    eid = await pub(bus, s, {"doc": "y"}, tracestate=TS)
    assert codec.F_TRACESTATE not in (await bus.redis.xrange(s, eid, eid))[0][1]
    d1, d2 = await bus.read(s, "workers", "w", count=2, block_ms=1000)
    assert (d1.meta.traceparent, d1.meta.tracestate) == (TP, None)
    assert (d2.meta.traceparent, d2.meta.tracestate) == (None, None)


async def test_batch_trace_context_per_event_and_malformed_refused_nothing_written(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    await bus.setup()
    await bus.publish_batch([PublishRequest(s, {"i": 0}, traceparent=TP), PublishRequest(s, {"i": 1})])
    got = await bus.read(s, "workers", "w", count=10, block_ms=1000)
    assert [(d.payload["i"], d.meta.traceparent) for d in got] == [(0, TP), (1, None)]
    before = await bus.redis.xlen(s)
    bad = "00-" + "0" * 32 + "-00f067aa0ba902b7-01"
    with pytest.raises(InvalidArgument) as e:
        await bus.publish_batch([PublishRequest(s, {"i": 2}), PublishRequest(s, {"i": 3}, traceparent=bad)])
    assert e.value.field == "traceparent" and e.value.message.startswith("events[1]: traceparent")
    with pytest.raises(InvalidArgument):
        await bus.publish(PublishRequest(s, {"i": 4}, traceparent=TP, tracestate="bad"))
    with pytest.raises(InvalidArgument):
        await bus.publish(PublishRequest(s, {"i": 5}, traceparent="00-abc"))
    assert await bus.redis.xlen(s) == before


async def test_seed_stream_stores_no_trace_context(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "wire_format": "seed"}})
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, {"doc": "x"}, traceparent=TP)
    assert (await bus.redis.xrange(s, eid, eid))[0][1] == {"doc": "x"}
    [d] = await bus.read(s, "workers", "w", block_ms=1000)
    assert d.meta.traceparent is None


async def test_channel_message_carries_it(make_bus, uniq):
    import asyncio

    bus = await make_bus()
    ch = f"{uniq}.info"
    got: list = []

    async def listen():
        async for m in bus.subscribe([ch]):
            got.append(m)
            return

    task = asyncio.create_task(listen())
    for _ in range(100):
        r = await bus.publish(PublishRequest(ch, {"x": 1}, traceparent=TP, tracestate=TS))
        if r.receivers:
            break
        await asyncio.sleep(0.02)
    await asyncio.wait_for(task, 5)
    assert (got[0].meta.traceparent, got[0].meta.tracestate) == (TP, TS)
