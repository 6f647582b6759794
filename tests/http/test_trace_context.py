"""W3C trace context over real HTTP (issue 10): the `traceparent` / `tracestate` headers of a
publish (single and batch) come back in every delivery's metadata; malformed ones are a 400."""

from __future__ import annotations

from .helpers import assert_error

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TS = "congo=t61rcWkgMzE"


def _read(api, stream, n=10):
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "w", "count": n, "block_ms": 1000})
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def test_headers_travel_to_the_delivery_metadata(api, stream):
    r = api.post("/api/v1/events/publish", json={"stream": stream, "payload": {"a": 1}},
                 headers={"traceparent": TP, "tracestate": TS})
    assert r.status_code == 200, r.text
    r = api.post("/api/v1/events/publish", json={"stream": stream, "payload": {"a": 2}})
    assert r.status_code == 200, r.text
    d1, d2 = _read(api, stream)
    assert (d1["metadata"]["traceparent"], d1["metadata"]["tracestate"]) == (TP, TS)
    assert (d2["metadata"]["traceparent"], d2["metadata"]["tracestate"]) == (None, None)
    nxt = api.post(f"/api/v1/streams/{stream}/groups/workers/nack", json={"id": d1["id"], "reason": "x"})
    assert nxt.status_code == 200, nxt.text


def test_batch_header_applies_to_every_event(api, stream):
    r = api.post("/api/v1/events/publish/batch", headers={"traceparent": TP},
                 json={"events": [{"stream": stream, "payload": {"i": 0}}, {"stream": stream, "payload": {"i": 1}}]})
    assert r.status_code == 200, r.text
    got = _read(api, stream)
    assert [(d["payload"]["i"], d["metadata"]["traceparent"], d["metadata"]["tracestate"]) for d in got] == [
        (0, TP, None), (1, TP, None)]


def test_dead_letter_list_and_replay_keep_it(api, uniq):
    stream = f"{uniq}.events"
    assert api.post(f"/api/v1/streams/{stream}/groups", json={"group": "workers", "start": "all"}).status_code == 201
    r = api.post("/api/v1/events/publish", json={"stream": stream, "payload": {"a": 1}}, headers={"traceparent": TP})
    assert r.status_code == 200, r.text
    # nack until dead-lettered (the session sidecar's max_deliveries for an unknown stream)
    for _ in range(50):
        got = _read(api, stream, 1)
        if not got:
            continue
        out = api.post(f"/api/v1/streams/{stream}/groups/workers/nack", json={"id": got[0]["id"], "reason": "no"}).json()
        if out["outcome"] == "dead_lettered":
            break
    else:
        raise AssertionError("never dead-lettered")
    [dead] = api.get(f"/api/v1/streams/{stream}/dlq").json()["entries"]
    assert dead["metadata"]["traceparent"] == TP
    r = api.post(f"/api/v1/streams/{stream}/dlq/replay", json={"ids": [dead["dlq_id"]]})
    assert r.status_code == 200, r.text
    [again] = _read(api, stream, 1)
    assert again["metadata"]["traceparent"] == TP and again["delivery_count"] == 1


def test_malformed_headers_are_400_and_nothing_is_written(api, stream, rds):
    cases = [
        ({"traceparent": "00-xyz"}, "traceparent"),
        ({"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "traceparent"),
        ({"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, "traceparent"),
        ({"traceparent": TP, "tracestate": "a=" + "b" * 600}, "tracestate"),
    ]
    for headers, field in cases:
        r = api.post("/api/v1/events/publish", json={"stream": stream, "payload": {"a": 1}}, headers=headers)
        err = assert_error(r, 400, "invalid_argument", field)
        assert field in err["message"]
        r = api.post("/api/v1/events/publish/batch", json={"events": [{"stream": stream, "payload": {"a": 1}}]}, headers=headers)
        assert_error(r, 400, "invalid_argument", field)
    assert rds.xlen(stream) == 0
