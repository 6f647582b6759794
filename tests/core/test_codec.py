"""Unit tests of the pure wire-format functions."""

import json

import pytest
from friday_bus.core import codec, names
from friday_bus.core.errors import InvalidArgument
from friday_bus.core.models import EventMeta

from .seed_format import seed_decode

PAYLOAD = {"s": "text", "i": 3, "big": 2**70, "f": 1.5, "b": True, "nb": False, "n": None,
           "o": {"a": [1, {"b": None}]}, "l": [1, "x"], "brace": "{not json", "unicode": "été ✓", "empty": ""}


def test_roundtrip_keeps_types():
    fields = codec.encode_event(PAYLOAD, EventMeta(event_id="k", source="src", correlation_id="c"), 1234)
    payload, meta = codec.decode_event("1234-0", fields)
    assert payload == PAYLOAD
    assert [type(payload[k]) for k in PAYLOAD] == [type(v) for v in PAYLOAD.values()]
    assert meta == EventMeta(event_id="k", source="src", correlation_id="c", published_at_ms=1234, encoding="friday")


def test_seed_consumer_reads_every_key_as_the_seed_publisher_would_write_it():
    # the seed's consumer crashes on any text starting with "{" that is not JSON, whoever wrote it
    payload = {k: v for k, v in PAYLOAD.items() if k != "brace"}
    fields = codec.encode_event(payload, EventMeta(), 1)
    seen = seed_decode(fields)
    for key, value in payload.items():
        if isinstance(value, (dict, list)):
            assert seen[key] == value
        else:
            assert seen[key] == str(value)


def test_legacy_entry_decoding():
    payload, meta = codec.decode_event("99-1", {"a": "True", "n": "3", "o": '{"x": 1}', "bad": "[oops"})
    assert payload == {"a": "True", "n": "3", "o": {"x": 1}, "bad": "[oops"}
    assert meta.encoding == "legacy" and meta.published_at_ms == 99


@pytest.mark.parametrize("payload, fragment", [
    ([1, 2], "JSON object"),
    ("x", "JSON object"),
    ({"": 1}, "non-empty"),
    ({"_friday_x": 1}, "reserved prefix"),
    ({"a": float("nan")}, "NaN"),
    ({"a": {"b": float("inf")}}, "NaN"),
    ({"a": "x" * 2000}, "over the"),
])
def test_invalid_payloads(payload, fragment):
    with pytest.raises(InvalidArgument) as exc:
        codec.validate_payload(payload, 1000)
    assert fragment in exc.value.message


def test_channel_message_roundtrip():
    data = codec.encode_channel_message({"x": 1}, EventMeta(source="s"), 5)
    assert json.loads(data)["x"] == 1
    payload, meta = codec.decode_channel_message(data)
    assert payload == {"x": 1} and meta.source == "s" and meta.published_at_ms == 5
    assert codec.decode_channel_message("plain text")[0] == {"message": "plain text"}


@pytest.mark.parametrize("bad", ["$", ">", "*", "18446744073709551616-0", "1-18446744073709551616", "abc", "1", "", "-1-0", "1-0\n"])
def test_entry_ids_refused(bad):
    with pytest.raises(InvalidArgument):
        names.check_entry_id(bad)


def test_entry_id_helpers():
    assert names.next_id("5-3") == "5-4"
    assert names.next_id(f"5-{names.U64_MAX}") == "6-0"
    assert names.id_before_time(1000) == f"999-{names.U64_MAX}"
    assert names.id_before_time(0) == "0-0"


@pytest.mark.parametrize("bad", ["a*b", "a{b}", "a:b", "a\x00b", "x" * 201, "", "a b", "abc\n"])
def test_bad_names(bad):
    with pytest.raises(InvalidArgument):
        names.check_stream(bad)
