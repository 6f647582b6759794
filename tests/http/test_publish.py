"""Publish through real HTTP: stream and channel routing, the seed's body shape, idempotency, batches."""

from __future__ import annotations

import json

from .helpers import assert_error, wait_for

PUBLISH_KEYS = {"stream", "kind", "id", "duplicate", "receivers"}


def test_seed_body_shape_to_a_seed_stream(api, rds):
    # Exactly what Friday's existing publisher sends: {"stream", "payload"}.
    payload = {"email_id": "abc", "has_attachments": True, "count": 3, "meta": {"from": "x@y"}, "tags": ["a"]}
    r = api.post("/api/v1/events/publish", json={"stream": "email.received", "payload": payload})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == PUBLISH_KEYS
    assert body["stream"] == "email.received" and body["kind"] == "stream"
    assert body["duplicate"] is False and body["receivers"] is None
    [(_, fields)] = rds.xrange("email.received", body["id"], body["id"])
    # One field per payload key, as the seed's publisher writes them (its consumer keeps working).
    assert fields["email_id"] == "abc" and fields["has_attachments"] == "True" and fields["count"] == "3"
    assert json.loads(fields["meta"]) == {"from": "x@y"} and json.loads(fields["tags"]) == ["a"]


def test_channel_routing_reaches_subscribers(api, rds):
    pubsub = rds.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("file.uploaded")
    try:
        r = api.post("/api/v1/events/publish", json={"stream": "file.uploaded", "payload": {"path": "/a.pdf"}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body == {"stream": "file.uploaded", "kind": "channel", "id": None, "duplicate": False,
                        "receivers": body["receivers"]}
        assert body["receivers"] >= 1
        msg = wait_for(lambda: pubsub.get_message(timeout=0.2), "the channel message")
        assert json.loads(msg["data"])["path"] == "/a.pdf"
        assert not rds.exists("file.uploaded")  # a channel never becomes a stream
    finally:
        pubsub.close()


def test_publish_to_unknown_stream_is_allowed_by_this_topology(api, rds, uniq):
    r = api.post("/api/v1/events/publish", json={"stream": f"{uniq}.new", "payload": {"a": 1}})
    assert r.status_code == 200 and r.json()["kind"] == "stream"
    assert rds.xlen(f"{uniq}.new") == 1


def test_idempotency_key_writes_once(api, rds, stream):
    body = {"stream": stream, "payload": {"a": 1}, "idempotency_key": "gmail-abc", "source": "gmail", "correlation_id": "c-1"}
    first = api.post("/api/v1/events/publish", json=body).json()
    second = api.post("/api/v1/events/publish", json=body).json()
    assert first["duplicate"] is False and second["duplicate"] is True
    assert first["id"] == second["id"]
    assert rds.xlen(stream) == 1


def test_metadata_round_trip(api, stream):
    body = {"stream": stream, "payload": {"n": 1.5, "ok": False, "none": None}, "source": "gmail", "correlation_id": "c-9"}
    eid = api.post("/api/v1/events/publish", json=body).json()["id"]
    [d] = api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "w1"}).json()["deliveries"]
    assert d["id"] == eid and d["payload"] == {"n": 1.5, "ok": False, "none": None}
    meta = d["metadata"]
    assert meta["source"] == "gmail" and meta["correlation_id"] == "c-9" and meta["encoding"] == "friday"
    assert meta["published_at"].endswith("Z") and isinstance(meta["published_at_ms"], int)


def test_batch_keeps_order_and_routes_each_event(api, rds, stream):
    events = [
        {"stream": stream, "payload": {"i": 0}},
        {"stream": "agent.completed", "payload": {"agent": "triage"}},
        {"stream": stream, "payload": {"i": 2}},
    ]
    r = api.post("/api/v1/events/publish/batch", json={"events": events})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["kind"] for x in results] == ["stream", "channel", "stream"]
    assert all(set(x) == PUBLISH_KEYS for x in results)
    ids = [e[0] for e in rds.xrange(stream)]
    assert ids == [results[0]["id"], results[2]["id"]]


def test_batch_with_one_invalid_event_writes_nothing(api, rds, stream):
    events = [{"stream": stream, "payload": {"i": 0}}, {"stream": stream, "payload": {"_friday_ts": 1}}]
    err = assert_error(api.post("/api/v1/events/publish/batch", json={"events": events}), 400, "invalid_argument")
    assert "events[1]" in err["message"]
    assert rds.xlen(stream) == 0


def test_batch_size_limits(api, rds, stream):
    assert_error(api.post("/api/v1/events/publish/batch", json={"events": []}), 400, "invalid_argument", "events")
    too_many = [{"stream": stream, "payload": {"i": i}} for i in range(1001)]
    assert_error(api.post("/api/v1/events/publish/batch", json={"events": too_many}), 400, "invalid_argument", "events")
    assert rds.xlen(stream) == 0
    ok = api.post("/api/v1/events/publish/batch", json={"events": too_many[:1000]})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 1000
    assert rds.xlen(stream) == 1000
