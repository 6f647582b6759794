"""The client's conversions between values and protobuf messages (no sidecar, no network)."""

from __future__ import annotations

import json
import math

import pytest
from friday_bus_client import Event, EventMeta, PublishResult, convert
from friday_bus_client._proto import eventbus_pb2 as pb


def test_payload_is_compact_json_with_types_kept():
    payload = {"n": 3, "big": 2**62, "f": 1.5, "whole_float": 2.0, "s": "é ✓", "b": True, "none": None,
               "nested": {"list": [1, 2.5, "x"]}}
    text = convert.dumps(payload)
    assert " " not in text.replace("é ✓", "")  # compact separators
    assert "é ✓" in text  # not \u-escaped
    back = json.loads(text)
    assert back == payload
    assert type(back["n"]) is int and type(back["big"]) is int
    assert type(back["f"]) is float and type(back["whole_float"]) is float


@pytest.mark.parametrize("bad", [["a", "list"], "text", 3, None])
def test_payload_must_be_a_mapping(bad):
    with pytest.raises(TypeError, match="mapping"):
        convert.dumps(bad)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_payload_without_json_values_is_refused(value):
    with pytest.raises(ValueError):
        convert.dumps({"x": value})


def test_publish_message_sets_only_the_given_fields():
    m = convert.publish_message("s", {"a": 1}, None, None, None)
    assert m.stream == "s" and json.loads(m.payload_json) == {"a": 1}
    assert not m.HasField("idempotency_key") and not m.HasField("correlation_id") and not m.HasField("source")
    m = convert.publish_message("s", {}, "k", "c", "src")
    assert (m.idempotency_key, m.correlation_id, m.source) == ("k", "c", "src")


def test_event_message_from_an_event_or_a_mapping():
    a = convert.event_message(Event("s", {"x": 1}, idempotency_key="k", source="me"))
    b = convert.event_message({"stream": "s", "payload": {"x": 1}, "idempotency_key": "k", "source": "me"})
    assert a == b
    assert a.idempotency_key == "k" and not a.HasField("correlation_id")


def test_metadata_absent_fields_read_back_as_none():
    assert convert.meta(pb.EventMetadata()) == EventMeta()
    m = pb.EventMetadata(event_id="e", source="s", correlation_id="c", published_at_ms=5, encoding="legacy")
    assert convert.meta(m) == EventMeta("e", "s", "c", 5, "legacy")
    assert convert.meta(pb.EventMetadata(encoding="something-newer")).encoding == "friday"


def test_publish_results_of_a_stream_and_a_channel():
    r = convert.publish_result(pb.PublishResponse(stream="s", kind="stream", id="1-0", duplicate=True))
    assert r == PublishResult("s", "stream", "1-0", duplicate=True, receivers=None)
    r = convert.publish_result(pb.PublishResponse(stream="c", kind="channel", receivers=0))
    assert r == PublishResult("c", "channel", None, duplicate=False, receivers=0)


def test_messages_with_json_payloads_decode_their_types():
    m = convert.channel_message(pb.ChannelMessage(channel="c", payload_json='{"i":1,"f":1.0,"l":[true]}',
                                                  metadata=pb.EventMetadata(source="x")))
    assert m.payload == {"i": 1, "f": 1.0, "l": [True]} and type(m.payload["f"]) is float
    assert m.meta.source == "x"
    d = convert.dead_letter(pb.DeadLetter(dlq_id="9-0", stream="s", original_id="1-0", group="g", reason="r",
                                          delivery_count=3, dead_lettered_at_ms=7, payload_json='{"a":2}'))
    assert (d.dlq_id, d.original_id, d.delivery_count, d.payload, d.meta) == ("9-0", "1-0", 3, {"a": 2}, EventMeta())


def test_nack_result_and_status():
    n = convert.nack_result(pb.NackResponse(id="1-0", outcome="dead_lettered", dead_letter_id="2-0"))
    assert (n.outcome, n.retry_at_ms, n.dead_letter_id) == ("dead_lettered", None, "2-0")
    n = convert.nack_result(pb.NackResponse(id="1-0", outcome="retry", retry_at_ms=99))
    assert (n.outcome, n.retry_at_ms, n.dead_letter_id) == ("retry", 99, None)
    st = convert.bus_status(pb.StatusResponse(
        redis_version="7.2", channels=["c"], generated_at_ms=1,
        streams=[pb.StreamStatus(name="s", exists=True, length=2, dead_letter_length=0,
                                 groups=[pb.GroupStatus(name="g", pending=1, last_delivered_id="1-0",
                                                        consumers=[pb.ConsumerStatus(name="a", pending=1, idle_ms=5)])])]))
    [s] = st.streams
    assert (s.name, s.length, s.first_entry_id, s.oldest_pending_age_ms) == ("s", 2, None, None)
    [g] = s.groups
    assert (g.name, g.pending, g.lag, g.consumers[0].name, g.consumers[0].idle_ms) == ("g", 1, None, "a", 5)
    assert st.channels == ["c"] and st.alerts == []
