"""Informational channels through real HTTP: Server-Sent Events subscription."""

from __future__ import annotations

import json

from .helpers import assert_error, wait_for


def numsub(rds, channel):
    return dict(rds.pubsub_numsub(channel)).get(channel, 0)


def test_subscribe_receives_published_messages(api, rds, sidecar):
    before = numsub(rds, "agent.completed")
    with sidecar.client() as sse, sse.stream("GET", "/api/v1/channels/agent.completed/subscribe") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == ": keepalive"  # sent at once, then every 15 s
        wait_for(lambda: numsub(rds, "agent.completed") > before, "the Redis subscription")
        pub = api.post("/api/v1/events/publish",
                       json={"stream": "agent.completed", "payload": {"agent": "triage", "ok": True}, "source": "t"})
        assert pub.json()["receivers"] >= 1
        event = data = None
        for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                break
        assert event == "message"
        assert data["channel"] == "agent.completed" and data["payload"] == {"agent": "triage", "ok": True}
        assert data["metadata"]["source"] == "t" and data["metadata"]["published_at_ms"] > 0
    # The client left: the sidecar drops its Redis subscription.
    wait_for(lambda: numsub(rds, "agent.completed") == before, "the subscription to end")


def test_subscribe_to_unknown_channel_or_a_stream(api):
    assert_error(api.get("/api/v1/channels/no.such.channel/subscribe"), 404, "not_found", "channel")
    assert_error(api.get("/api/v1/channels/email.received/subscribe"), 404, "not_found", "channel")
    assert_error(api.get("/api/v1/channels/a*b/subscribe"), 400, "invalid_argument", "channel")
