"""Bad input gets a clear 4xx with the error body, never a 500, and writes nothing (checked in Redis)."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from .helpers import assert_error

BAD_NAMES = ["a*b", "{x}", "a:b", "a\x00b", "x" * 10240, "a b", "abc\n", "é", "a/b", "*", "$", ">"]
BAD_IDS = ["$", ">", "*", "+", "-", "", "18446744073709551616-0", "0-18446744073709551616", "1-2-3", "-1-0",
           "1717000000000", "000000000000000000001-0", "1.5-0", " 1-0", "1-0\n", "1-0\x00"]


@pytest.fixture
def snapshot(rds):
    """DBSIZE before the test; call it to assert nothing was written."""
    before = rds.dbsize()

    def check():
        assert rds.dbsize() == before, "the request wrote to Redis"

    return check


def path(name: str) -> str:
    return quote(name, safe="")


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n[:12]))
def test_bad_names_in_bodies(api, rds, snapshot, name):
    assert_error(api.post("/api/v1/events/publish", json={"stream": name, "payload": {"a": 1}}), 400, "invalid_argument", "stream")
    assert_error(api.post("/api/v1/events/publish/batch", json={"events": [{"stream": name, "payload": {}}]}), 400,
                 "invalid_argument", "events[0].stream")
    assert_error(api.post("/api/v1/streams/email.received/groups", json={"group": name}), 400, "invalid_argument", "group")
    if name not in ("a:b",):  # ':' and '@' are allowed in consumer names
        assert_error(api.post("/api/v1/streams/email.received/groups/email-processor/read", json={"consumer": name}),
                     400, "invalid_argument", "consumer")
    snapshot()
    assert not rds.exists(name)


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if n not in ("a/b",)], ids=lambda n: repr(n[:12]))
def test_bad_names_in_paths(api, snapshot, name):
    p = path(name)
    calls = [
        ("POST", f"/api/v1/streams/{p}/groups/workers/read", {"consumer": "c"}),
        ("POST", f"/api/v1/streams/email.received/groups/{p}/ack", {"ids": ["1-0"]}),
        ("POST", f"/api/v1/streams/{p}/groups/workers/nack", {"id": "1-0", "reason": "x"}),
        ("GET", f"/api/v1/streams/{p}/next", None),
        ("GET", f"/api/v1/channels/{p}/subscribe", None),
        ("GET", f"/api/v1/streams/{p}/status", None),
        ("POST", f"/api/v1/streams/{p}/groups", {"group": "g"}),
        ("DELETE", f"/api/v1/streams/email.received/groups/{p}", None),
        ("POST", f"/api/v1/streams/{p}/groups/g/rewind", {"to_id": "1-0"}),
        ("GET", f"/api/v1/streams/{p}/dlq", None),
        ("POST", f"/api/v1/streams/{p}/dlq/replay", {}),
        ("GET", f"/api/v1/groups?stream={p}", None),
    ]
    for method, url, body in calls:
        r = api.request(method, url, json=body)
        assert_error(r, 400, "invalid_argument")
    snapshot()


def test_slash_and_empty_names_do_not_match_a_route(api, snapshot):
    assert_error(api.get(f"/api/v1/streams/{path('a/b')}/status"), 404, "not_found")
    assert_error(api.post("/api/v1/streams//groups/g/read", json={"consumer": "c"}), 404, "not_found")
    snapshot()


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_entry_ids(api, stream, snapshot, bad):
    base = f"/api/v1/streams/{stream}"
    assert_error(api.post(f"{base}/groups/workers/ack", json={"ids": [bad]}), 400, "invalid_argument")
    assert_error(api.post(f"{base}/groups/workers/nack", json={"id": bad, "reason": "x"}), 400, "invalid_argument", "id")
    assert_error(api.post(f"{base}/groups/workers/rewind", json={"to_id": bad}), 400, "invalid_argument", "to_id")
    assert_error(api.post(f"{base}/dlq/replay", json={"ids": [bad]}), 400, "invalid_argument")
    if bad not in ("new", "all"):
        assert_error(api.post(f"{base}/groups", json={"group": "g2", "start": bad}), 400, "invalid_argument", "start")
    assert_error(api.get(f"{base}/dlq", params={"after": bad}), 400, "invalid_argument", "after")
    snapshot()


@pytest.mark.parametrize("count", [0, 1001, 10**30, -1, "10", 1.5, True, None, [], {}])
def test_bad_count(api, stream, snapshot, count):
    err = assert_error(api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "c", "count": count}),
                       400, "invalid_argument", "count")
    assert "count" in err["message"]
    if count not in (True, None, [], {}, "10"):
        assert_error(api.get(f"/api/v1/streams/{stream}/dlq", params={"count": count}), 400, "invalid_argument", "count")
    snapshot()


@pytest.mark.parametrize("block", [-1, 30001, 10**20, "100", 0.5, False])
def test_bad_block(api, stream, snapshot, block):
    assert_error(api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "c", "block_ms": block}),
                 400, "invalid_argument", "block_ms")
    if not isinstance(block, (bool, str)):  # in a query string "100" is just 100
        assert_error(api.get(f"/api/v1/streams/{stream}/next", params={"block_ms": block}), 400, "invalid_argument", "block_ms")
    snapshot()


@pytest.mark.parametrize(("payload", "fragment"), [
    ([], "JSON object"), ("text", "object"), (1, "object"), (None, "object"),
    ({"_friday_ts": 1}, "reserved"), ({"": 1}, "non-empty"), ({"k": "x" * (1024 * 1024)}, "FRIDAY_MAX_PAYLOAD_BYTES"),
])
def test_bad_payloads_write_nothing(api, rds, stream, snapshot, payload, fragment):
    before = rds.xlen(stream)
    err = assert_error(api.post("/api/v1/events/publish", json={"stream": stream, "payload": payload}),
                       400, "invalid_argument", "payload")
    assert fragment.lower() in err["message"].lower()
    assert rds.xlen(stream) == before
    snapshot()


@pytest.mark.parametrize(("body", "field"), [
    ({"stream": 123, "payload": {}}, "stream"),
    ({"stream": "s", "payload": {}, "idempotency_key": 5}, "idempotency_key"),
    ({"stream": "s", "payload": {}, "idempotency_key": ""}, "idempotency_key"),
    ({"stream": "s", "payload": {}, "source": "x" * 300}, "source"),
    ({"stream": "s", "payload": {}, "correlation_id": "a\x00b"}, "correlation_id"),
    ({"stream": "s", "payload": {}, "paylod": {}}, "paylod"),
    ({"payload": {}}, "stream"),
    ({"stream": "s"}, "payload"),
])
def test_wrong_publish_fields(api, rds, snapshot, body, field):
    err = assert_error(api.post("/api/v1/events/publish", json=body), 400, "invalid_argument", field)
    assert field in err["message"]
    assert not rds.exists("s")
    snapshot()


def test_wrong_types_elsewhere(api, stream, snapshot):
    base = f"/api/v1/streams/{stream}"
    assert_error(api.post("/api/v1/events/publish/batch", json={"events": {}}), 400, "invalid_argument", "events")
    assert_error(api.post(f"{base}/groups/workers/ack", json={"ids": "1-0"}), 400, "invalid_argument", "ids")
    assert_error(api.post(f"{base}/groups/workers/ack", json={"ids": []}), 400, "invalid_argument", "ids")
    assert_error(api.post(f"{base}/groups/workers/nack", json={"id": "1-0", "reason": 5}), 400, "invalid_argument", "reason")
    assert_error(api.post(f"{base}/groups/workers/nack", json={"id": "1-0", "reason": ""}), 400, "invalid_argument", "reason")
    assert_error(api.post(f"{base}/groups/workers/read", json={"consumer": 7}), 400, "invalid_argument", "consumer")
    assert_error(api.post(f"{base}/groups/workers/rewind", json={"to_time_ms": "1"}), 400, "invalid_argument", "to_time_ms")
    assert_error(api.post(f"{base}/groups/workers/rewind", json={"to_time_ms": -1}), 400, "invalid_argument", "to_time_ms")
    assert_error(api.post(f"{base}/groups", json={"group": "g", "start": "latest"}), 400, "invalid_argument", "start")
    assert_error(api.delete(f"{base}/groups/workers", params={"force": "maybe"}), 400, "invalid_argument", "force")
    snapshot()


@pytest.mark.parametrize(("content", "headers", "fragment"), [
    (b"{not json", {"content-type": "application/json"}, "not valid JSON"),
    (b"", {"content-type": "application/json"}, "required"),
    (b"[]", {"content-type": "application/json"}, "JSON object"),
    (b'"x"', {"content-type": "application/json"}, "JSON object"),
    (b'{"stream": "s", "payload": {"x": NaN}}', {"content-type": "application/json"}, "NaN"),
    (b"[" * 100_000, {"content-type": "application/json"}, "JSON"),
    # a body that is not Content-Type: application/json (a form, text/plain) is 415: tests/http/test_strict_json.py
])
def test_unparsable_bodies(api, snapshot, content, headers, fragment):
    err = assert_error(api.post("/api/v1/events/publish", content=content, headers=headers), 400, "invalid_argument")
    assert fragment.lower() in err["message"].lower(), err
    snapshot()


def test_oversize_bodies_are_refused_before_reading_them_all(api, stream, snapshot):
    big = json.dumps({"events": [{"stream": stream, "payload": {"k": "x" * 1000}}] * 17_000}).encode()
    err = assert_error(api.post("/api/v1/events/publish/batch", content=big, headers={"content-type": "application/json"}),
                       400, "invalid_argument", "body")
    assert "bytes" in err["message"]

    def chunks():  # no Content-Length: the limit applies while streaming
        for i in range(0, len(big), 1 << 20):
            yield big[i:i + (1 << 20)]

    try:
        r = api.post("/api/v1/events/publish/batch", content=chunks(), headers={"content-type": "application/json"})
        assert_error(r, 400, "invalid_argument", "body")
    except httpx.RemoteProtocolError:
        pass  # the server may answer and close before the client finished sending; it did not write anything
    snapshot()


def test_channel_name_where_a_stream_is_needed(api, snapshot):
    err = assert_error(api.post("/api/v1/streams/file.uploaded/groups/g/read", json={"consumer": "c"}), 400, "invalid_argument")
    assert "channel" in err["message"]
    snapshot()


@pytest.mark.parametrize("content", [
    b'{"stream": "STREAM", "payload": {"k": "\\udc00"}}',
    b'{"stream": "STREAM", "payload": {"\\ud800": 1}}',
    b'{"stream": "STREAM", "payload": {"k": [{"deep": "x\\udfff"}]}}',
    b'{"stream": "file.uploaded", "payload": {"k": "\\udc00"}}',
    b'{"stream": "STREAM", "payload": {}, "source": "\\udc00"}',
])
def test_lone_surrogates_are_bad_input(api, stream, snapshot, content):
    r = api.post("/api/v1/events/publish", content=content.replace(b"STREAM", stream.encode()),
                 headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_argument")
    snapshot()
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/nack", content=b'{"id": "1-0", "reason": "\\udc00"}',
                 headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_argument", "reason")
