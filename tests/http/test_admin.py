"""Admin routes through real HTTP: lists, status, group create/destroy, rewind, dead letters and replay."""

from __future__ import annotations

import pytest
from friday_bus.core.settings import DEFAULT_CHANNELS, DEFAULT_STREAMS

from .helpers import assert_error


def publish(api, stream, payload):
    return api.post("/api/v1/events/publish", json={"stream": stream, "payload": payload}).json()["id"]


def test_list_streams_channels_groups(api):
    streams = api.get("/api/v1/streams").json()["streams"]
    by_name = {s["name"]: s for s in streams}
    for name, groups in DEFAULT_STREAMS.items():
        assert set(groups) <= set(by_name[name]["groups"])
        assert by_name[name]["retention"] == 10000
    assert api.get("/api/v1/channels").json() == {"channels": DEFAULT_CHANNELS}
    groups = api.get("/api/v1/groups", params={"stream": "email.received"}).json()["groups"]
    assert {"stream": "email.received", "name": "email-processor"} in groups
    every = api.get("/api/v1/groups").json()["groups"]
    assert {(g["stream"], g["name"]) for g in every} >= {(s, g) for s, gs in DEFAULT_STREAMS.items() for g in gs}


def test_status_shapes(api, stream):
    publish(api, stream, {"a": 1})
    status = api.get("/api/v1/status").json()
    assert set(status) == {"redis_version", "streams", "channels", "alerts", "generated_at_ms"}
    assert {s["name"] for s in status["streams"]} >= set(DEFAULT_STREAMS)
    one = api.get(f"/api/v1/streams/{stream}/status").json()
    assert set(one) == {"name", "exists", "length", "first_entry_id", "last_entry_id", "dead_letter_length",
                        "oldest_pending_age_ms", "groups", "alerts"}
    assert one["exists"] is True and one["length"] == 1
    [g] = one["groups"]
    assert g["name"] == "workers" and g["lag"] == 1 and g["pending"] == 0
    assert set(g) == {"name", "consumers", "pending", "lag", "last_delivered_id", "retry_scheduled"}
    assert any(a["metric"] == "no_consumer" and a["group"] == "workers" for a in one["alerts"])


def test_create_group_is_idempotent(api, rds, uniq):
    s = f"{uniq}.g"
    r = api.post(f"/api/v1/streams/{s}/groups", json={"group": "audit"})
    assert r.status_code == 201 and r.json() == {"created": True}
    r = api.post(f"/api/v1/streams/{s}/groups", json={"group": "audit", "start": "all"})
    assert r.status_code == 200 and r.json() == {"created": False}
    eid = publish(api, s, {"a": 1})
    r = api.post(f"/api/v1/streams/{s}/groups", json={"group": "late", "start": eid})
    assert r.status_code == 201
    names = {g["name"] for g in rds.xinfo_groups(s)}
    assert names == {"audit", "late"}


def test_destroy_group_refuses_while_pending_unless_forced(api, rds, stream):
    publish(api, stream, {"a": 1})
    api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "w1"})
    err = assert_error(api.delete(f"/api/v1/streams/{stream}/groups/workers"), 409, "conflict")
    assert err["details"] == {"pending": 1}
    r = api.delete(f"/api/v1/streams/{stream}/groups/workers", params={"force": "true"})
    assert r.status_code == 200 and r.json() == {"destroyed": True, "pending_dropped": 1}
    assert rds.xinfo_groups(stream) == []
    assert_error(api.delete(f"/api/v1/streams/{stream}/groups/workers"), 404, "not_found", "group")


def test_rewind_redelivers(api, stream):
    first = publish(api, stream, {"i": 1})
    publish(api, stream, {"i": 2})
    got = api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "w", "count": 10}).json()["deliveries"]
    api.post(f"/api/v1/streams/{stream}/groups/workers/ack", json={"ids": [d["id"] for d in got]})
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/rewind", json={"to_id": first})
    assert r.status_code == 200 and r.json() == {"rewound": True, "last_delivered_id": first}
    again = api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "w", "count": 10}).json()["deliveries"]
    assert [d["payload"] for d in again] == [{"i": 2}]
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/rewind", json={"to_time_ms": 0})
    assert r.status_code == 200 and r.json()["last_delivered_id"] == "0-0"
    again = api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "w", "count": 10}).json()["deliveries"]
    assert [d["payload"] for d in again] == [{"i": 1}, {"i": 2}]
    assert_error(api.post(f"/api/v1/streams/{stream}/groups/workers/rewind", json={}), 400, "invalid_argument")
    assert_error(api.post(f"/api/v1/streams/{stream}/groups/workers/rewind", json={"to_id": first, "to_time_ms": 1}),
                 400, "invalid_argument")
    assert_error(api.post(f"/api/v1/streams/{stream}/groups/nope/rewind", json={"to_id": first}), 404, "not_found")


def test_rewind_into_the_future_is_refused(api, rds, stream):
    """A target beyond both the stream's last entry and now would make the group skip every event
    published until then with a lag of 0 (no alert): 400 naming the limit, the group untouched."""
    last = publish(api, stream, {"i": 1})
    before = {g["name"]: g["last-delivered-id"] for g in rds.xinfo_groups(stream)}["workers"]
    future_ms = int(last.split("-")[0]) + 10 * 365 * 24 * 3600 * 1000
    err = assert_error(api.post(f"/api/v1/streams/{stream}/groups/workers/rewind", json={"to_time_ms": future_ms}),
                       400, "invalid_argument", "to_time_ms")
    assert "in the future" in err["message"] and "Give a time up to now" in err["message"]
    err = assert_error(api.post(f"/api/v1/streams/{stream}/groups/workers/rewind", json={"to_id": f"{future_ms}-0"}),
                       400, "invalid_argument", "to_id")
    assert f"after the stream's last entry {last}" in err["message"]
    after = {g["name"]: g["last-delivered-id"] for g in rds.xinfo_groups(stream)}["workers"]
    assert after == before
    # the largest JSON-safe integer is refused the same way, not accepted as "far enough"
    assert_error(api.post(f"/api/v1/streams/{stream}/groups/workers/rewind", json={"to_time_ms": 2**53 - 1}),
                 400, "invalid_argument", "to_time_ms")


def _dead_letter(api, stream, payload, reason):
    eid = publish(api, stream, payload)
    for _ in range(3):  # FRIDAY_MAX_DELIVERIES=3 in the test sidecar
        [d] = api.post(f"/api/v1/streams/{stream}/groups/workers/read",
                       json={"consumer": "w", "block_ms": 10000}).json()["deliveries"]
        assert d["id"] == eid
        out = api.post(f"/api/v1/streams/{stream}/groups/workers/nack", json={"id": eid, "reason": reason}).json()
    assert out["outcome"] == "dead_lettered"
    return out["dead_letter_id"]


def test_dlq_list_page_and_replay(api, rds, stream):
    first = _dead_letter(api, stream, {"n": 1}, "bad 1")
    second = _dead_letter(api, stream, {"n": 2}, "bad 2")
    entries = api.get(f"/api/v1/streams/{stream}/dlq").json()["entries"]
    assert [e["dlq_id"] for e in entries] == [first, second]
    assert [e["reason"] for e in entries] == ["bad 1", "bad 2"]
    assert set(entries[0]) == {"dlq_id", "stream", "original_id", "group", "reason", "delivery_count",
                               "dead_lettered_at_ms", "payload", "metadata"}
    page = api.get(f"/api/v1/streams/{stream}/dlq", params={"count": 1, "after": first}).json()["entries"]
    assert [e["dlq_id"] for e in page] == [second]
    r = api.post(f"/api/v1/streams/{stream}/dlq/replay", json={"ids": [first]})
    assert r.status_code == 200
    [item] = r.json()["replayed"]
    assert item["dlq_id"] == first
    assert rds.xrange(stream, item["new_id"], item["new_id"])[0][1]["n"] == "1"
    assert_error(api.post(f"/api/v1/streams/{stream}/dlq/replay", json={"ids": [first]}), 404, "not_found", "ids")
    r = api.post(f"/api/v1/streams/{stream}/dlq/replay", json={"all": True})  # every one, said explicitly
    assert [x["dlq_id"] for x in r.json()["replayed"]] == [second]
    assert api.get(f"/api/v1/streams/{stream}/dlq").json() == {"entries": []}


REPLAY_WHAT = "name the dead letters to replay (ids), or set all to true"


@pytest.mark.parametrize(("kwargs", "field", "fragment"), [
    ({}, "body", REPLAY_WHAT),  # no body at all: never "replay everything"
    ({"content": b"", "headers": {"content-type": "application/json"}}, "body", REPLAY_WHAT),
    ({"json": {}}, "ids", REPLAY_WHAT),
    ({"json": {"all": False}}, "ids", REPLAY_WHAT),
    ({"json": {"ids": []}}, "ids", REPLAY_WHAT),
    ({"json": {"ids": [], "all": False}}, "ids", REPLAY_WHAT),
    ({"json": {"ids": None}}, "ids", REPLAY_WHAT),
    ({"json": {"ids": ["DLQ"], "all": True}}, "ids", REPLAY_WHAT),
    ({"content": b"null", "headers": {"content-type": "application/json"}}, "body", "JSON object"),
    ({"json": {"all": "true"}}, "all", "true or false"),
], ids=["no-body", "empty-body", "empty-object", "all-false", "empty-ids", "empty-ids-all-false", "null-ids",
        "ids-and-all", "null", "all-as-string"])
def test_dlq_replay_refuses_a_body_that_does_not_say_what(api, rds, stream, kwargs, field, fragment):
    dlq_id = _dead_letter(api, stream, {"n": 1}, "bad")
    if kwargs.get("json", {}).get("ids") == ["DLQ"]:
        kwargs = {"json": {**kwargs["json"], "ids": [dlq_id]}}  # a real dead letter, so only "both" is wrong
    length = rds.xlen(stream)
    err = assert_error(api.post(f"/api/v1/streams/{stream}/dlq/replay", **kwargs), 400, "invalid_argument", field)
    assert fragment in err["message"], err
    # Nothing was replayed: the dead letter is still there and the stream got no new entry.
    assert [e["dlq_id"] for e in api.get(f"/api/v1/streams/{stream}/dlq").json()["entries"]] == [dlq_id]
    assert rds.xlen(stream) == length


def test_dlq_replay_all_on_an_empty_dead_letter_stream(api, stream):
    r = api.post(f"/api/v1/streams/{stream}/dlq/replay", json={"all": True})
    assert r.status_code == 200 and r.json() == {"replayed": []}


def test_dlq_replay_ids_with_all_false_replays_those(api, rds, stream):
    first = _dead_letter(api, stream, {"n": 1}, "bad 1")
    second = _dead_letter(api, stream, {"n": 2}, "bad 2")
    r = api.post(f"/api/v1/streams/{stream}/dlq/replay", json={"ids": [second], "all": False})
    assert r.status_code == 200 and [x["dlq_id"] for x in r.json()["replayed"]] == [second]
    assert [e["dlq_id"] for e in api.get(f"/api/v1/streams/{stream}/dlq").json()["entries"]] == [first]
