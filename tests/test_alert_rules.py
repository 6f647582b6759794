"""deploy/prometheus/alerts.yml against a real scrape of /metrics (issue 12, section 3).

* every metric name a rule uses is exported by a running sidecar;
* every alert of the core (core/status.py ALERT_METRICS) has a rule, and a series
  ``friday_alert{stream,group,metric}`` in the scrape (0 or 1), which is 1 exactly for the
  alerts the status API raises;
* on a sidecar where every alert is raised, each rule of the form
  ``GAUGE and on(labels) (friday_alert{metric="M"} == 1)`` selects the gauge series of the raised
  alerts, with the alert's value as ``$value`` (evaluated here on the scraped samples: no
  Prometheus in the tests).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from friday_bus.core.status import ALERT_METRICS
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, RedisServer

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCRAPE_RULE = "FridaySidecarDown"  # the one rule on Prometheus's own `up`, not on a sidecar metric
NAME = re.compile(r'(?<![\w"])friday_[a-z_]+')
JOINED = re.compile(
    r'^(?P<gauge>friday_[a-z_]+) and on\((?P<on>[a-z_, ]+)\) \(friday_alert\{metric="(?P<metric>[a-z_]+)"\} == 1\)$'
)


def rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def scrape(car) -> tuple[set[str], list[Any]]:
    """(every metric name the scrape exposes, its samples)."""
    with car.client() as c:
        r = c.get("/metrics")
    assert r.status_code == 200, r.text
    names: set[str] = set()
    samples = []
    for f in text_string_to_metric_families(r.text):
        names.add(f.name)
        if f.type == "counter":
            names |= {f.name + "_total", f.name + "_created"}
        if f.type == "histogram":
            names |= {f.name + s for s in ("_bucket", "_sum", "_count", "_created")}
        for s in f.samples:
            names.add(s.name)
            samples.append(s)
    return names, samples


def raised_by_status(car) -> dict[tuple[str, str, str], int]:
    with car.client() as c:
        r = c.get("/api/v1/status")
    assert r.status_code == 200, r.text
    return {(a["stream"], a["group"] or "", a["metric"]): a["value"] for a in r.json()["alerts"]}


def alert_series(samples) -> dict[tuple[str, str, str], float]:
    return {(s.labels["stream"], s.labels["group"], s.labels["metric"]): s.value for s in samples if s.name == "friday_alert"}


def test_every_rule_uses_exported_metric_names(sidecar):
    exported, _ = scrape(sidecar)
    job = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"][0]["job_name"]
    for rule in rules():
        used = NAME.findall(rule["expr"])
        if rule["alert"] == SCRAPE_RULE:  # on the scrape itself: Prometheus's `up` of the sidecar's job
            assert rule["expr"] == f'up{{job="{job}"}} == 0', rule
            continue
        assert used, rule["alert"]
        for name in used:
            assert name in exported, (rule["alert"], name)
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"], rule["alert"]


def test_every_alert_of_the_core_has_a_rule_and_a_series(sidecar):
    exprs = [r["expr"] for r in rules()]
    for metric in ALERT_METRICS:
        assert any(f'friday_alert{{metric="{metric}"}} == 1' in e for e in exprs), f"no rule for the {metric} alert"
    _, samples = scrape(sidecar)
    series = alert_series(samples)
    assert {m for _, _, m in series} == set(ALERT_METRICS)
    assert set(series.values()) <= {0.0, 1.0}
    thresholds = {(s.labels["stream"], s.labels["group"], s.labels["metric"]) for s in samples if s.name == "friday_alert_threshold"}
    assert thresholds == set(series)
    assert "length" not in {m for _, _, m in series}


def test_friday_alert_is_what_the_status_raises(sidecar):
    for _ in range(3):  # the two requests see the same state unless a background loop changed it in between
        raised = raised_by_status(sidecar)
        _, samples = scrape(sidecar)
        firing = {k for k, v in alert_series(samples).items() if v == 1}
        if firing == set(raised):
            break
    assert firing == set(raised)


@pytest.fixture
def alarmed(start_sidecar, tmp_path):
    """A sidecar on its own Redis with thresholds so low that every alert of the core is raised:
    a backlog over FRIDAY_ALERT_LENGTH and over the retention, pending, lag, a dead letter, and
    groups nobody reads."""
    redis = RedisServer(tmp_path / "redis").start()
    try:
        car = start_sidecar(redis_url=redis.url, FRIDAY_ALERT_LENGTH="1", FRIDAY_RETENTION="2", FRIDAY_ALERT_PENDING="0",
                            FRIDAY_ALERT_LAG="0", FRIDAY_MAX_DELIVERIES="1")
        stream, group = "email.received", "email-processor"
        with car.client() as c:
            for i in range(5):
                assert c.post("/api/v1/events/publish", json={"stream": stream, "payload": {"i": i}}).status_code == 200
            got = c.post(f"/api/v1/streams/{stream}/groups/{group}/read", json={"consumer": "w", "count": 2}).json()["deliveries"]
            r = c.post(f"/api/v1/streams/{stream}/groups/{group}/nack", json={"id": got[0]["id"], "reason": "poison"})
            assert r.status_code == 200 and r.json()["outcome"] == "dead_lettered", r.text
        yield car
    finally:
        redis.stop()


def test_each_rule_selects_the_raised_alerts(alarmed):
    raised = raised_by_status(alarmed)
    assert {m for _, _, m in raised} == set(ALERT_METRICS)
    assert raised[("email.received", "email-processor", "backlog")] == 4  # 3 not delivered + 1 pending
    _, samples = scrape(alarmed)
    assert {k for k, v in alert_series(samples).items() if v == 1} == set(raised)
    evaluated = set()
    for rule in rules():
        m = JOINED.match(rule["expr"].strip())
        if m is None:
            continue
        on = [x.strip() for x in m["on"].split(",")]
        firing = {tuple(s.labels.get(k, "") for k in on) for s in samples
                  if s.name == "friday_alert" and s.labels["metric"] == m["metric"] and s.value == 1}
        selected = {tuple(s.labels.get(k, "") for k in on): s.value for s in samples
                    if s.name == m["gauge"] and tuple(s.labels.get(k, "") for k in on) in firing}
        assert selected, (rule["alert"], "selects nothing although the alert is raised")
        for key, value in selected.items():
            labels = dict(zip(on, key, strict=True))
            assert value == raised[(labels["stream"], labels.get("group", ""), m["metric"])], (rule["alert"], key)
        evaluated.add(m["metric"])
    assert evaluated == set(ALERT_METRICS)
