"""Wire formats (FRIDAY_WIRE_FORMAT / a stream's ``wire_format``): ``seed`` writes exactly what the
seed's publisher writes and nothing else; entries without ``_friday_ts`` are the seed's and are
read with every key they have. Checked against the seed's publisher and consumer themselves
(tests/core/seed_format.py), on a real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from friday_bus.core import ConfigError, InvalidArgument, PublishRequest, Settings, build_topology, codec, load_settings
from friday_bus.core.models import EventMeta

from .helpers import blocked_xreads, pub
from .seed_format import seed_consume_one, seed_decode, seed_publish

# Every kind of value a JSON payload has, nested and unicode included. (No text starting with
# "{" or "[" that is not JSON: the seed's consumer itself fails on it, whoever wrote it.)
PAYLOAD = {
    "email_id": "abc123", "empty": "", "count": 3, "big": 2**70, "neg": -7, "ratio": 0.1, "f": 2.5, "exp": 1e21,
    "yes": True, "no": False, "none": None, "text_true": "True", "digits": "42",
    "nested": {"a": [1, 2.5, {"b": None, "c": True}], "é": "ünï ✓", "emoji": "🎉"},
    "list": ["x", 1, None, False, {"k": "v"}, []], "empty_obj": {}, "empty_list": [],
    "unicode": "été ✓ 日本語", "spaces": "  a  b ", "newline": "line1\nline2",
}


@pytest.fixture
async def raw(redis_server) -> AsyncIterator[aioredis.Redis]:
    """A plain client that returns bytes, for byte-for-byte comparisons."""
    r = aioredis.Redis.from_url(redis_server.url, decode_responses=False)
    yield r
    await r.aclose()


@pytest.fixture
async def text(redis_server) -> AsyncIterator[aioredis.Redis]:
    """A plain client like the seed's (decode_responses=True)."""
    r = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield r
    await r.aclose()


def settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)


# ------------------------------------------------------------------ encoding (pure)
def test_seed_encoding_is_the_seed_publishers_text():
    fields = codec.encode_event(PAYLOAD, EventMeta(event_id="k", source="s", correlation_id="c"), 1234, "seed")
    expected = {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in PAYLOAD.items()}
    assert list(fields.items()) == list(expected.items())  # same keys, same order, same text, nothing else
    assert fields["nested"] == '{"a": [1, 2.5, {"b": null, "c": true}], "\\u00e9": "\\u00fcn\\u00ef \\u2713", "emoji": "\\ud83c\\udf89"}'
    assert (fields["yes"], fields["none"], fields["ratio"], fields["exp"]) == ("True", "None", "0.1", "1e+21")


def test_seed_encoding_refuses_what_json_cannot_carry():
    for bad in ({"a": float("nan")}, {"a": [float("inf")]}, {"a": {"b": float("-inf")}}):
        with pytest.raises(InvalidArgument, match="NaN"):
            codec.encode_event(bad, EventMeta(), 1, "seed")


async def test_an_empty_payload_is_refused_on_a_seed_stream_only(make_bus, uniq):
    bus = await make_bus({"typed": ["workers"], "seed": {"groups": ["workers"], "wire_format": "seed"}})
    assert await pub(bus, f"{uniq}.typed", {})
    with pytest.raises(InvalidArgument, match="payload is empty; a stream in the seed wire format"):
        await pub(bus, f"{uniq}.seed", {})
    with pytest.raises(InvalidArgument, match=r"events\[1\]: payload is empty"):
        await bus.publish_batch([PublishRequest(f"{uniq}.seed", {"a": 1}), PublishRequest(f"{uniq}.seed", {}, event_id="e")])
    assert not await bus.redis.exists(f"{uniq}.seed")


def test_entries_without_friday_ts_keep_every_key():
    payload, meta = codec.decode_event("7-0", {"_friday_note": "hi", "_friday_dlq_x": "[1]", "x": "1"})
    assert payload == {"_friday_note": "hi", "_friday_dlq_x": [1], "x": "1"} and meta.encoding == "legacy"


# ------------------------------------------------------------------ publishing on a real Redis
async def test_seed_format_entry_is_byte_for_byte_the_seed_publishers(make_bus, uniq, raw, text):
    bus = await make_bus({"events": ["workers", "legacy"]}, wire_format="seed")
    s = f"{uniq}.events"
    await bus.setup()
    ours = await pub(bus, s, PAYLOAD, source="n8n", correlation_id="c-1")
    theirs = await seed_publish(text, s, PAYLOAD)
    entries = await raw.xrange(s)
    assert [e[0].decode() for e in entries] == [ours, theirs]
    (_, our_fields), (_, their_fields) = entries
    assert list(our_fields.items()) == list(their_fields.items())  # same keys, order and bytes: nothing added
    # the seed's consumer gets exactly the same dict from both
    _, from_sidecar = await seed_consume_one(text, s, "legacy", "worker-1")
    _, from_seed = await seed_consume_one(text, s, "legacy", "worker-1")
    assert from_sidecar == from_seed == seed_decode({k.decode(): v.decode() for k, v in their_fields.items()})
    assert from_sidecar["nested"] == PAYLOAD["nested"] and from_sidecar["count"] == "3" and from_sidecar["yes"] == "True"
    # the sidecar's own consumers read back what the seed's consumer reads: types and metadata are not kept
    a, b = await bus.read(s, "workers", "w", count=2)
    assert a.payload == b.payload == from_seed
    assert a.meta == EventMeta(published_at_ms=int(ours.split("-")[0]), encoding="legacy")


async def test_idempotency_keys_still_dedupe_on_a_seed_stream_without_touching_the_entry(make_bus, uniq, text):
    bus = await make_bus(wire_format="seed")
    s = f"{uniq}.events"
    await bus.setup()
    first = await bus.publish(PublishRequest(s, {"n": 1}, event_id="evt-1"))
    again = await bus.publish(PublishRequest(s, {"n": 1}, event_id="evt-1"))
    [batched] = await bus.publish_batch([PublishRequest(s, {"n": 1}, event_id="evt-1")])
    assert not first.duplicate and again.duplicate and batched.duplicate
    assert first.entry_id == again.entry_id == batched.entry_id
    assert await text.xrange(s) == [(first.entry_id, {"n": "1"})]  # one entry, no _friday field
    assert await text.get(bus.keys.idem(s, "evt-1")) == first.entry_id  # the key lives beside the entry


async def test_the_size_limit_applies_to_the_seed_encoding(make_bus, uniq):
    # key "o" + 30 "é" in a list: 152 bytes as compact UTF-8 JSON (typed), 301 as json.dumps writes it (seed)
    payload = {"o": ["é"] * 30}
    spec = {"typed": {"groups": ["workers"]}, "seed": {"groups": ["workers"], "wire_format": "seed"}}
    bus = await make_bus(spec, max_payload_bytes=200)
    await pub(bus, f"{uniq}.typed", payload)
    with pytest.raises(InvalidArgument, match="payload is 301 bytes, over the 200-byte limit"):
        await pub(bus, f"{uniq}.seed", payload)


async def test_a_stream_in_the_topology_overrides_the_default(make_bus, uniq, text):
    spec = {"typed": ["workers"], "seed": {"groups": ["workers"], "wire_format": "seed"}}
    bus = await make_bus(spec)
    await bus.setup()
    await pub(bus, f"{uniq}.typed", {"n": 1})
    await pub(bus, f"{uniq}.seed", {"n": 1})
    [(_, typed)] = await text.xrange(f"{uniq}.typed")
    [(_, seed)] = await text.xrange(f"{uniq}.seed")
    assert codec.F_TS in typed and seed == {"n": "1"}
    # and the other way round: seed by default, one stream typed
    bus = await make_bus({"back": {"groups": ["workers"], "wire_format": "typed"}, "other": ["workers"]}, wire_format="seed")
    await pub(bus, f"{uniq}.back", {"n": 2})
    await pub(bus, f"{uniq}.other", {"n": 2})
    assert codec.F_TS in (await text.xrange(f"{uniq}.back"))[0][1]
    assert (await text.xrange(f"{uniq}.other"))[0][1] == {"n": "2"}


def test_topology_defaults_and_unknown_streams_take_the_wire_format():
    topo = build_topology(settings(wire_format="seed"), {"streams": {"a": ["g"], "b": {"groups": ["g"], "wire_format": "typed"}}})
    assert (topo.streams["a"].wire_format, topo.streams["b"].wire_format, topo.config_for("x").wire_format) == ("seed", "typed", "seed")
    topo = build_topology(settings(), {"defaults": {"wire_format": "seed"}, "streams": {"a": ["g"]}})
    assert (topo.streams["a"].wire_format, topo.config_for("x").wire_format) == ("seed", "seed")
    assert build_topology(settings()).streams["email.received"].wire_format == "typed"  # today's format stays the default
    assert settings(wire_format=" Seed ").wire_format == "seed"


@pytest.mark.parametrize("value", ["json", "", "typed,seed"])
def test_a_bad_setting_fails_at_start_with_the_fix(monkeypatch, value):
    monkeypatch.setenv("FRIDAY_WIRE_FORMAT", value)
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None)
    assert "FRIDAY_WIRE_FORMAT" in str(exc.value) and "must be typed or seed" in str(exc.value)


@pytest.mark.parametrize("value", ["json", 1, None, ["seed"]])
def test_a_bad_topology_value_fails_at_start_with_the_fix(value):
    with pytest.raises(ConfigError) as exc:
        build_topology(settings(), {"streams": {"s": {"groups": ["g"], "wire_format": value}}})
    assert "stream s.wire_format must be typed or seed" in str(exc.value)


# ------------------------------------------------------------------ reading the seed's entries
async def test_seed_entries_keep_their_friday_keys_when_read(make_bus, uniq, text):
    bus = await make_bus()  # typed stream: the seed's publisher writes to the same streams
    s = f"{uniq}.events"
    await bus.setup()
    payload = {"_friday_note": "written by the seed", "_friday": {"x": 1}, "email_id": "abc"}
    eid = await seed_publish(text, s, payload)
    [d] = await bus.read(s, "workers", "w")
    assert d.entry_id == eid and d.payload == {"_friday_note": "written by the seed", "_friday": {"x": 1}, "email_id": "abc"}
    peek = asyncio.create_task(bus.peek_next(s, block_ms=5000))
    while not await blocked_xreads(bus):
        await asyncio.sleep(0.01)
    await seed_publish(text, s, {"_friday_note": "again"})
    assert (await asyncio.wait_for(peek, 5)).payload == {"_friday_note": "again"}


# ------------------------------------------------------------------ nack, dead letters, replay
async def test_nack_dead_letter_and_replay_on_a_seed_stream_give_back_the_seed_fields(make_bus, uniq, raw, text):
    spec = {"events": {"groups": ["workers", "legacy"], "max_deliveries": 2, "backoff": {"initial_ms": 10}, "wire_format": "seed"}}
    bus = await make_bus(spec, claim_interval_ms=50)
    s = f"{uniq}.events"
    await bus.setup()
    eid = await pub(bus, s, PAYLOAD)
    [(_, original)] = await raw.xrange(s)
    [d] = await bus.read(s, "workers", "w")
    assert (await bus.nack(s, "workers", eid, "boom 1")).outcome == "retry"
    [d2] = await bus.read(s, "workers", "w", block_ms=2000)
    assert d2.entry_id == eid and d2.delivery_count == 2 and d2.payload == d.payload
    dead = await bus.nack(s, "workers", eid, "boom 2")
    assert dead.outcome == "dead_lettered"
    # the dead-letter stream is the sidecar's: the original fields, then its own _friday_dlq_* fields
    [(_, dl_fields)] = await raw.xrange(bus.keys.dlq(s))
    assert list(dl_fields.items())[: len(original)] == list(original.items())
    assert all(k.startswith(codec.DLQ_PREFIX.encode()) for k in list(dl_fields)[len(original):])
    [listed] = await bus.dlq_list(s)
    assert (listed.original_id, listed.reason, listed.delivery_count) == (eid, "boom 2", 2) and listed.payload == d.payload
    # the replayed entry is exactly the original seed entry again: no marker added
    [replayed] = await bus.dlq_replay(s, "all")
    [(new_id, again)] = await raw.xrange(s, min=f"({eid}")
    assert new_id.decode() == replayed.new_entry_id and list(again.items()) == list(original.items())
    _, first = await seed_consume_one(text, s, "legacy", "worker-1")
    _, second = await seed_consume_one(text, s, "legacy", "worker-1")
    assert first == second
    [d3] = await bus.read(s, "workers", "w")
    assert d3.entry_id == replayed.new_entry_id and d3.payload == d.payload and d3.delivery_count == 1


async def test_a_seed_publishers_entry_is_replayed_exactly_even_on_a_typed_stream(make_bus, uniq, raw, text):
    bus = await make_bus({"events": {"groups": ["workers"], "max_deliveries": 1}})
    s = f"{uniq}.events"
    await bus.setup()
    eid = await seed_publish(text, s, {"_friday_note": "mine", "n": 1, "o": {"k": [1]}})
    [(_, original)] = await raw.xrange(s)
    [d] = await bus.read(s, "workers", "w")
    assert (await bus.nack(s, "workers", eid, "no")).outcome == "dead_lettered"
    [listed] = await bus.dlq_list(s)
    assert listed.payload == d.payload == {"_friday_note": "mine", "n": "1", "o": {"k": [1]}}
    [replayed] = await bus.dlq_replay(s, "all")
    assert list((await raw.xrange(s, min=replayed.new_entry_id))[0][1].items()) == list(original.items())
    [back] = await bus.read(s, "workers", "w")
    assert back.payload == d.payload and await bus.ack(s, "workers", [back.entry_id]) == 1
    # a typed entry still carries where it came from (a reserved field its consumers never see)
    typed_id = await pub(bus, s, {"n": 2})
    [_typed] = await bus.read(s, "workers", "w")
    assert (await bus.nack(s, "workers", typed_id, "no")).outcome == "dead_lettered"
    [replayed] = await bus.dlq_replay(s, "all")
    [(_, fields)] = await text.xrange(s, min=replayed.new_entry_id)
    assert fields[codec.F_REPLAYED_FROM] and codec.F_TS in fields
    [d3] = await bus.read(s, "workers", "w", count=5)
    assert d3.payload == {"n": 2}
