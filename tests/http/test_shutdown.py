"""Graceful shutdown: SIGTERM/SIGINT end long polls and SSE streams, the process exits within its grace,
and nothing is acked on anyone's behalf (entries taken by reads stay pending)."""

from __future__ import annotations

import signal
import threading

import httpx

from .helpers import wait_for

GRACE_S = 3


def test_sigterm_during_a_long_poll(start_sidecar, rds, uniq):
    car = start_sidecar(FRIDAY_SHUTDOWN_GRACE_S=GRACE_S)
    s = f"{uniq}.shutdown"
    with car.client() as c:
        assert c.post(f"/api/v1/streams/{s}/groups", json={"group": "held", "start": "all"}).status_code == 201
        for i in range(2):
            c.post("/api/v1/events/publish", json={"stream": s, "payload": {"i": i}})
        taken = c.post(f"/api/v1/streams/{s}/groups/held/read", json={"consumer": "worker", "count": 10}).json()["deliveries"]
        assert len(taken) == 2  # delivered, not acked
        # A group that starts after those entries: its long poll has nothing to get.
        assert c.post(f"/api/v1/streams/{s}/groups", json={"group": "waiting", "start": "new"}).status_code == 201
    result: dict = {}

    def poll():
        with car.client() as pc:
            try:
                result["r"] = pc.post(f"/api/v1/streams/{s}/groups/waiting/read",
                                      json={"consumer": "poller", "count": 10, "block_ms": 30000})
            except httpx.HTTPError as exc:
                result["error"] = exc

    t = threading.Thread(target=poll)
    t.start()
    # The poll is in flight once a Redis client is blocked in XREADGROUP (no other sidecar long-polls now).
    wait_for(lambda: any(cl.get("cmd") == "xreadgroup" and "b" in cl.get("flags", "") for cl in rds.client_list()),
             "the long poll to start", interval=0.01)
    car.signal(signal.SIGTERM)
    assert car.wait(GRACE_S + 10) == 0  # exits on its own within its grace (plus start-up slack), not killed
    t.join(10)
    assert not t.is_alive()
    if "r" in result:  # answered before the listener closed: a retriable 503, no deliveries
        r = result["r"]
        assert r.status_code == 503 and r.json()["error"]["retriable"] is True
    # Nothing was acked on anyone's behalf.
    held = rds.xpending_range(s, "held", "-", "+", 10)
    assert sorted(p["message_id"] for p in held) == sorted(d["id"] for d in taken)
    assert {p["consumer"] for p in held} == {"worker"}
    assert "stopped" in car.log_tail()


def test_sigint_during_an_sse_stream(start_sidecar):
    car = start_sidecar(FRIDAY_SHUTDOWN_GRACE_S=GRACE_S)
    lines = []
    with car.client() as c, c.stream("GET", "/api/v1/channels/file.uploaded/subscribe") as r:
        assert r.status_code == 200
        it = r.iter_lines()
        lines.append(next(it))
        car.signal(signal.SIGINT)
        lines.extend(it)  # ends when the server closes the stream
    assert lines[0] == ": keepalive"
    assert car.wait(GRACE_S + 10) == 0


def test_in_flight_request_finishes_during_shutdown(start_sidecar, uniq):
    # A read that already has its deliveries is answered normally even though SIGTERM arrived meanwhile.
    car = start_sidecar(FRIDAY_SHUTDOWN_GRACE_S=GRACE_S)
    s = f"{uniq}.inflight"
    with car.client() as c:
        c.post(f"/api/v1/streams/{s}/groups", json={"group": "g", "start": "all"})
        eid = c.post("/api/v1/events/publish", json={"stream": s, "payload": {"a": 1}}).json()["id"]
        r = c.post(f"/api/v1/streams/{s}/groups/g/read", json={"consumer": "w", "block_ms": 1000})
        assert [d["id"] for d in r.json()["deliveries"]] == [eid]
    car.signal(signal.SIGTERM)
    assert car.wait(GRACE_S + 10) == 0
