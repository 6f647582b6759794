"""Consumer groups through real HTTP: long-poll read, ack, nack → retry → dead letter, reclaim, next."""

from __future__ import annotations

import threading

import httpx

from .helpers import assert_error, wait_for


def publish(api, stream, payload):
    r = api.post("/api/v1/events/publish", json={"stream": stream, "payload": payload})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def read(api, stream, consumer, group="workers", **kw):
    r = api.post(f"/api/v1/streams/{stream}/groups/{group}/read", json={"consumer": consumer, **kw})
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def test_read_without_waiting_on_an_empty_group(api, stream):
    assert read(api, stream, "w1") == []


def test_long_poll_returns_when_an_event_arrives(api, sidecar, stream):
    result: dict = {}

    def poll():
        with sidecar.client() as c:
            result["r"] = c.post(f"/api/v1/streams/{stream}/groups/workers/read",
                                 json={"consumer": "w1", "count": 5, "block_ms": 20000})

    t = threading.Thread(target=poll)
    t.start()
    eid = publish(api, stream, {"email_id": "abc"})
    t.join(30)
    assert not t.is_alive()
    r = result["r"]
    assert r.status_code == 200, r.text
    [d] = r.json()["deliveries"]
    assert set(d) == {"stream", "group", "consumer", "id", "delivery_count", "payload", "metadata"}
    assert (d["stream"], d["group"], d["consumer"], d["id"], d["delivery_count"]) == (stream, "workers", "w1", eid, 1)
    assert d["payload"] == {"email_id": "abc"}


def test_ack(api, rds, stream):
    eid = publish(api, stream, {"a": 1})
    [d] = read(api, stream, "w1")
    assert rds.xpending(stream, "workers")["pending"] == 1
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/ack", json={"ids": [d["id"]]})
    assert r.status_code == 200 and r.json() == {"acked": 1}
    assert rds.xpending(stream, "workers")["pending"] == 0
    again = api.post(f"/api/v1/streams/{stream}/groups/workers/ack", json={"ids": [eid]})
    assert again.status_code == 200 and again.json() == {"acked": 0}


def test_nack_retries_then_dead_letters_with_the_reason(api, rds, stream):
    # The test sidecar runs with FRIDAY_MAX_DELIVERIES=3 and a 100 ms initial backoff.
    eid = publish(api, stream, {"doc": "x.pdf"})
    for attempt in (1, 2):
        [d] = read(api, stream, "w1", block_ms=10000)
        assert d["id"] == eid and d["delivery_count"] == attempt
        r = api.post(f"/api/v1/streams/{stream}/groups/workers/nack", json={"id": eid, "reason": f"failed {attempt}"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["outcome"] == "retry" and body["id"] == eid
        assert isinstance(body["retry_at_ms"], int) and body["dead_letter_id"] is None
    [d] = read(api, stream, "w1", block_ms=10000)
    assert d["delivery_count"] == 3
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/nack", json={"id": eid, "reason": "parser crashed"})
    body = r.json()
    assert body["outcome"] == "dead_lettered" and body["retry_at_ms"] is None and body["dead_letter_id"]
    assert rds.xpending(stream, "workers")["pending"] == 0
    [dl] = api.get(f"/api/v1/streams/{stream}/dlq").json()["entries"]
    assert dl["dlq_id"] == body["dead_letter_id"] and dl["original_id"] == eid
    assert dl["reason"] == "parser crashed" and dl["group"] == "workers" and dl["delivery_count"] == 3
    assert dl["payload"] == {"doc": "x.pdf"}
    assert read(api, stream, "w1") == []


def test_nack_of_an_entry_that_is_not_pending(api, stream):
    eid = publish(api, stream, {"a": 1})
    assert_error(api.post(f"/api/v1/streams/{stream}/groups/workers/nack", json={"id": eid, "reason": "x"}),
                 404, "not_found", "id")


def test_unacked_entries_of_a_silent_consumer_are_reclaimed(api, rds, stream):
    # FRIDAY_CLAIM_IDLE_MS=500 in the test sidecar: another consumer gets the entry once it sat idle that long.
    eid = publish(api, stream, {"a": 1})
    [d] = read(api, stream, "crashed")
    assert d["delivery_count"] == 1
    got = wait_for(lambda: read(api, stream, "rescuer", block_ms=2000), "the reclaimed delivery")
    assert [(x["id"], x["consumer"], x["delivery_count"]) for x in got] == [(eid, "rescuer", 2)]


def test_a_long_poll_whose_client_leaves_acks_nothing(api, rds, sidecar, stream):
    # The client gives up (timeout) during a long poll; whatever that read may have taken stays pending.
    with sidecar.client(timeout=0.5) as impatient:
        try:
            impatient.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "gone", "block_ms": 20000})
        except httpx.TimeoutException:
            pass
    eid = publish(api, stream, {"a": 1})
    got = wait_for(lambda: read(api, stream, "present", block_ms=2000), "the delivery")
    assert [x["id"] for x in got] == [eid]
    pending = rds.xpending_range(stream, "workers", "-", "+", 10)
    assert [(p["message_id"], p["consumer"]) for p in pending] == [(eid, "present")]


def test_next_waits_for_the_next_event_without_touching_groups(api, rds, sidecar, stream):
    result: dict = {}

    def listen():
        with sidecar.client() as c:
            result["r"] = c.get(f"/api/v1/streams/{stream}/next", params={"block_ms": 20000})

    t = threading.Thread(target=listen)
    t.start()
    published = []
    # `next` sees only events published after it started waiting: publish until it answers.
    while t.is_alive() and len(published) < 200:
        published.append(publish(api, stream, {"n": len(published)}))
        t.join(0.1)
    t.join(30)
    r = result["r"]
    assert r.status_code == 200, r.text
    event = r.json()["event"]
    assert set(event) == {"stream", "id", "delivery_count", "payload", "metadata"}
    assert event["stream"] == stream and event["delivery_count"] == 0 and event["id"] in published
    assert rds.xpending(stream, "workers")["pending"] == 0  # no group touched


def test_next_without_waiting(api, stream):
    r = api.get(f"/api/v1/streams/{stream}/next")
    assert r.status_code == 200 and r.json() == {"event": None}


def test_extend_keeps_a_long_job_and_only_for_its_owner(api, rds, stream):
    eid = publish(api, stream, {"job": "long"})
    [_] = read(api, stream, "slow")  # exactly one delivery, now pending for "slow"
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/extend", json={"consumer": "slow", "ids": [eid]})
    assert r.status_code == 200 and r.json() == {"extended": 1}
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/extend", json={"consumer": "other", "ids": [eid]})
    assert r.json() == {"extended": 0}
    [p] = rds.xpending_range(stream, "workers", "-", "+", 10)
    assert (p["consumer"], p["times_delivered"]) == ("slow", 1)
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/extend", json={"consumer": "slow", "ids": ["$"]})
    assert_error(r, 400, "invalid_argument")
