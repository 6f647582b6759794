"""Probes and metrics through real HTTP, including readiness while Redis is down."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, RedisServer

from .helpers import assert_error, wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_probes_need_no_key(sidecar):
    with httpx.Client(base_url=sidecar.http_url) as c:
        r = c.get("/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready" and r.json()["redis_version"]


def test_metrics_count_what_the_bus_does(api, sidecar, stream):
    ids = [api.post("/api/v1/events/publish", json={"stream": stream, "payload": {"i": i}}).json()["id"] for i in range(3)]
    got = api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "w", "count": 3}).json()["deliveries"]
    assert len(got) == 3
    api.post(f"/api/v1/streams/{stream}/groups/workers/ack", json={"ids": ids[:2]})
    api.post(f"/api/v1/streams/{stream}/groups/workers/nack", json={"id": ids[2], "reason": "x"})
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    sg = (("group", "workers"), ("stream", stream))
    assert m[("friday_events_published_total", (("kind", "stream"), ("stream", stream)))] == 3
    assert m[("friday_events_delivered_total", sg)] == 3
    assert m[("friday_events_acked_total", sg)] == 2
    assert m[("friday_events_nacked_total", sg)] == 1
    assert ("friday_publish_duration_seconds_bucket", (("kind", "stream"), ("le", "0.0001"))) in m
    assert m[("friday_redis_up", ())] == 1
    # Gauges of the topology's streams, read at scrape time.
    seed = (("group", "email-processor"), ("stream", "email.received"))
    for name in ("friday_group_pending", "friday_group_lag", "friday_group_consumers", "friday_group_retry_scheduled"):
        assert (name, seed) in m, name
    for name in ("friday_stream_length", "friday_stream_dead_letters"):
        assert (name, (("stream", "email.received"),)) in m, name
    assert sidecar.api_key not in r.text


def test_alert_rules_use_exported_metric_names(api):
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"][0]["rules"]
    exported = {f.name for f in text_string_to_metric_families(api.get("/metrics").text)}
    exported |= {n + "_total" for n in exported}
    exprs = {r["alert"]: r["expr"] for r in rules}
    for alert, expr in exprs.items():
        for name in re.findall(r"\bfriday_[a-z_]+", expr):
            assert name in exported, (alert, name)
    rules_text = " ".join(exprs.values())  # the sidecar decides (thresholds: FRIDAY_ALERT_*); tests/test_alert_rules.py
    for metric in ("backlog", "backlog_over_retention", "pending", "lag", "no_consumer", "dead_letters"):
        assert f'friday_alert{{metric="{metric}"}} == 1' in rules_text, metric


def test_readiness_follows_redis(start_sidecar, tmp_path: Path):
    redis = RedisServer(tmp_path / "redis").start()
    try:
        car = start_sidecar(redis_url=redis.url)
        with car.client(timeout=30) as c:
            assert c.get("/readyz").status_code == 200
            redis.stop()
            err = assert_error(c.get("/readyz"), 503, "unavailable")
            assert err["retriable"] is True
            assert c.get("/healthz").status_code == 200
            r = c.post("/api/v1/events/publish", json={"stream": "email.received", "payload": {"a": 1}})
            assert_error(r, 503, "unavailable")
            assert r.headers["retry-after"]
            m = samples(c.get("/metrics").text)
            assert m[("friday_redis_up", ())] == 0
            assert c.get("/api/v1/streams").status_code == 503
            with c.stream("GET", "/api/v1/channels/file.uploaded/subscribe") as sse:  # fails after the 200 started
                assert sse.status_code == 200
                lines = list(sse.iter_lines())
            assert lines[0] == ": keepalive" and "event: error" in lines
            data = json.loads(next(line for line in lines if line.startswith("data: ")).removeprefix("data: "))
            assert data["error"]["code"] == "unavailable" and data["error"]["retriable"] is True
        assert car.stop() == 0
    finally:
        redis.stop()


def test_readiness_comes_back_with_redis(start_sidecar, tmp_path: Path):
    redis = RedisServer(tmp_path / "redis").start()
    try:
        car = start_sidecar(redis_url=redis.url)
        with car.client(timeout=30) as c:
            redis.proc.send_signal(19)  # SIGSTOP: Redis hangs instead of refusing
            assert_error(c.get("/readyz"), 503, "unavailable")
            redis.proc.send_signal(18)  # SIGCONT
            wait_for(lambda: c.get("/readyz").status_code == 200, "readiness to come back")
    finally:
        if redis.proc is not None:
            redis.proc.send_signal(18)
        redis.stop()
