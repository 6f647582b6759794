"""The alert rules and the Grafana dashboard in a real Prometheus (issue 10, items 3 and 4).

Debian's ``prometheus`` package (``make test`` installs it: scripts/ensure-system.sh test) gives
``promtool``, which checks deploy/prometheus/alerts.yml, and ``prometheus``, which this module
starts once (module-scoped) on a free loopback port with the shipped deploy/prometheus/prometheus.yml,
only these replaced: the scrape target (a real sidecar on its own real redis-server), the key file
(the sidecar's admin key, for /metrics), the rule file and the intervals (1 s scrape and
evaluation instead of 15 s).

The rules run from a temporary copy of alerts.yml in which every ``for:`` is 1 s (the shipped 1 to
10 minutes would make the test last that long) and the range and offset of FridayEventsLostToTrim
(15m) are 5 s, so that it resolves 5 s after the loss instead of 15 minutes; nothing else of a rule
changes.

The sidecar's thresholds (FRIDAY_ALERT_PENDING=3, _LAG=3, _LENGTH=4, a stream with retention 2)
let each condition raise exactly one alert, on a stream of its own: every alert test checks that
Prometheus's active alerts (GET /api/v1/alerts) become exactly that one, firing with the expected
value, then, once the condition is fixed, that no alert is active and every rule
(GET /api/v1/rules) is inactive again. Every wait is a bounded poll. The dashboard test runs every
target of deploy/grafana/dashboards/friday.json (Grafana variables replaced) against the same
Prometheus after traffic that touches every metric.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_py
import yaml

from tests.conftest import ROOT, RedisServer, free_port
from tests.sidecar_fixture import Sidecar, launch_sidecar, wait_until_ready

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROM_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "friday.json"

INTERVAL = "1s"       # scrape and evaluation interval of the test's Prometheus
FOR = "1s"            # every rule's `for:` in the test's copy of alerts.yml
WINDOW = "5s"         # ranges and offsets of the rules (FridayEventsLostToTrim's 15m) in that copy
WAIT_S = 30.0         # bound of every wait on Prometheus
RATE_INTERVAL = "1m"   # $__rate_interval of the dashboard's queries (Grafana: 4 scrape intervals of 15 s)

QUIET = {"claim_idle_ms": 600_000}  # no reclaim nor sweep while a test holds entries pending
TOPOLOGY: dict[str, Any] = {
    "streams": {
        "alert.pending": {"groups": ["workers"], **QUIET},
        "alert.lag": {"groups": ["workers"], **QUIET},
        "alert.backlog": {"groups": ["workers"], **QUIET},
        "alert.retention": {"groups": ["workers"], "retention": 2, **QUIET},
        "alert.noconsumer": {"groups": ["workers"], **QUIET},
        "alert.dlq": {"groups": ["workers"], "max_deliveries": 1, **QUIET},
        "alert.lost": {"groups": ["workers"], "max_deliveries": 1, **QUIET},
        "dash.traffic": {"groups": ["workers"], "max_deliveries": 2, "claim_idle_ms": 300,
                         "backoff": {"initial_ms": 50, "multiplier": 1, "max_ms": 50}},
    },
    "channels": ["dash.info"],
}
SETTINGS = {"FRIDAY_ALERT_PENDING": "3", "FRIDAY_ALERT_LAG": "3", "FRIDAY_ALERT_LENGTH": "4",
            "FRIDAY_ALERT_DEAD_LETTERS": "1"}

AlertKey = tuple[str, str, str]  # (alertname, stream, group)


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: run `make test`, which installs Debian's prometheus package "
                    "(scripts/ensure-system.sh test; or apt-get install prometheus)")
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], check=False, capture_output=True, text=True, timeout=60)


def shipped_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_checks_the_rules() -> None:
    proc = promtool("check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(shipped_rules())} rules found" in proc.stdout, proc.stdout


def test_rules_copy(tmp_path: Path) -> None:
    """The rewrite changes `for:`, ranges and offsets only (and promtool accepts the copy)."""
    copy = rules_copy(tmp_path / "alerts.yml")
    original, rewritten = shipped_rules(), [r for g in yaml.safe_load(copy.read_text())["groups"] for r in g["rules"]]
    assert [r["alert"] for r in rewritten] == [r["alert"] for r in original]
    strip = re.compile(r"\[\d+[smhdwy]\]|offset \d+[smhdwy]")
    for a, b in zip(original, rewritten, strict=True):
        assert strip.sub("", a["expr"]) == strip.sub("", b["expr"]), a["alert"]
        assert {k: v for k, v in a.items() if k not in ("for", "expr")} == {k: v for k, v in b.items() if k not in ("for", "expr")}
        assert b.get("for", FOR) == FOR
    proc = promtool("check", "rules", str(copy))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def rules_copy(path: Path) -> Path:
    doc = yaml.safe_load(RULES.read_text())
    for g in doc["groups"]:
        for r in g["rules"]:
            if "for" in r:
                r["for"] = FOR
            r["expr"] = re.sub(r"\[\d+[smhdwy]\]", f"[{WINDOW}]", r["expr"])
            r["expr"] = re.sub(r"offset \d+[smhdwy]", f"offset {WINDOW}", r["expr"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def prometheus_config(path: Path, target: str, key_file: Path, rule_file: Path) -> Path:
    """deploy/prometheus/prometheus.yml with the test's target, key file, rule file and intervals."""
    doc = yaml.safe_load(PROM_CONFIG.read_text())
    assert set(doc) == {"global", "rule_files", "scrape_configs"}, "a new section of prometheus.yml: replace it here if needed"
    assert len(doc["rule_files"]) == 1 and doc["rule_files"][0].endswith("/alerts.yml")
    [job] = doc["scrape_configs"]
    assert job["job_name"] == "friday-sidecar" and job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer" and "credentials_file" in job["authorization"]
    assert "credentials" not in job["authorization"], "the key must come from a file (a compose secret), not the config"
    [static] = job["static_configs"]
    assert static["targets"] == ["sidecar:8000"]
    doc["global"].update(scrape_interval=INTERVAL, evaluation_interval=INTERVAL)
    doc["rule_files"] = [str(rule_file)]
    job["authorization"]["credentials_file"] = str(key_file)
    static["targets"] = [target]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def api(self, path: str, **params: Any) -> Any:
        r = self.http.get(self.url + path, params=params)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (path, params, r.status_code, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def active(self) -> dict[AlertKey, dict[str, Any]]:
        """Pending and firing alerts by (alertname, stream, group)."""
        out = {}
        for a in self.api("/api/v1/alerts")["alerts"]:
            lb = a["labels"]
            out[(lb["alertname"], lb.get("stream", ""), lb.get("group", ""))] = a
        return out

    def rules(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for g in self.api("/api/v1/rules", type="alert")["groups"] for r in g["rules"]}

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_S, extra: Callable[[], str] = lambda: "") -> float:
    """Poll ``check`` until it returns a truthy value; the seconds it took (fails after ``timeout``)."""
    start = time.monotonic()
    last: Any = None
    while time.monotonic() - start < timeout:
        last = check()
        if last:
            return time.monotonic() - start
        time.sleep(0.2)
    pytest.fail(f"not within {timeout:.0f} s: {what} (last: {last!r}) {extra()}")


def start_prometheus(workdir: Path, config: Path) -> Prometheus:
    exe = binary("prometheus")
    for _ in range(3):
        port = free_port()
        log_path = workdir / f"prometheus-{port}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [exe, f"--config.file={config}", f"--storage.tsdb.path={workdir / f'data-{port}'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        prom = Prometheus(f"http://127.0.0.1:{port}", proc, log_path)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if prom.http.get(prom.url + "/-/ready", timeout=1.0).status_code == 200:
                    return prom
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        prom.stop()  # exited (the free port was taken meanwhile?) or never ready: another port
    pytest.fail(f"prometheus did not start:\n{prom.log_tail()}")


def restart_redis_on_its_port(server: RedisServer) -> None:
    """Start ``server`` again on the port it had (the sidecar's FRIDAY_REDIS_URL names it), with its data."""
    exe = shutil.which("redis-server")
    assert exe is not None
    server.proc = subprocess.Popen(
        [exe, "--port", str(server.port), "--bind", "127.0.0.1", "--dir", str(server.workdir), "--appendonly", "yes",
         "--save", "", "--daemonize", "no", "--logfile", str(server.workdir / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def pong() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    wait_for(pong, f"redis-server back on port {server.port}", timeout=15)


@dataclass
class Stack:
    car: Sidecar
    redis: RedisServer
    prom: Prometheus
    client: httpx.Client
    figures: dict[str, tuple[float, float]] = field(default_factory=dict)

    def publish(self, stream: str, n: int = 1, **extra: Any) -> list[str]:
        ids = []
        for i in range(n):
            r = self.client.post("/api/v1/events/publish", json={"stream": stream, "payload": {"i": i}, **extra})
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
        return ids

    def read(self, stream: str, group: str = "workers", count: int = 10, consumer: str = "w") -> list[dict[str, Any]]:
        r = self.client.post(f"/api/v1/streams/{stream}/groups/{group}/read",
                             json={"consumer": consumer, "count": count, "block_ms": 0})
        assert r.status_code == 200, r.text
        return r.json()["deliveries"]

    def ack(self, stream: str, ids: list[str], group: str = "workers") -> int:
        r = self.client.post(f"/api/v1/streams/{stream}/groups/{group}/ack", json={"ids": ids})
        assert r.status_code == 200, r.text
        return r.json()["acked"]

    def nack(self, stream: str, entry_id: str, group: str = "workers") -> httpx.Response:
        return self.client.post(f"/api/v1/streams/{stream}/groups/{group}/nack", json={"id": entry_id, "reason": "test"})

    def drain(self, stream: str, held: list[str] = (), group: str = "workers") -> None:  # type: ignore[assignment]
        """Ack ``held`` (delivered earlier), then read and ack whatever the group has not been delivered yet."""
        if held:
            assert self.ack(stream, list(held), group) == len(held)
        while got := self.read(stream, group, count=100):
            self.ack(stream, [d["id"] for d in got], group)

    def expect(self, name: str, make: Callable[[], None], fix: Callable[[], None], expected: dict[AlertKey, float | None]) -> None:
        """``make`` the condition: Prometheus's active alerts become exactly ``expected``, firing with those values
        (None: any value > 0); ``fix`` it: no alert is active, every rule inactive."""
        prom = self.prom
        make()
        t0 = time.monotonic()
        wait_for(lambda: set(prom.active()) >= set(expected) and all(prom.active()[k]["state"] == "firing" for k in expected),
                 f"{name}: {sorted(expected)} firing", extra=lambda: f"active: {sorted(prom.active())}\n{self.car.log_tail(1500)}")
        fired = time.monotonic() - t0
        active = prom.active()
        assert set(active) == set(expected), f"{name}: other alerts are active too: {sorted(active)}"
        rules = prom.rules()
        for key, value in expected.items():
            a, alertname = active[key], key[0]
            got = float(a["value"])
            assert got == value if value is not None else got > 0, (name, a)
            assert rules[alertname]["state"] == "firing" and rules[alertname]["health"] == "ok", rules[alertname]
            assert a["labels"]["severity"] == next(r["labels"]["severity"] for r in shipped_rules() if r["alert"] == alertname)
        t1 = time.monotonic()
        fix()
        wait_for(lambda: not prom.active(), f"{name}: every alert inactive once fixed", extra=lambda: f"active: {sorted(prom.active())}")
        resolved = time.monotonic() - t1
        for rule in prom.rules().values():
            assert rule["state"] == "inactive" and rule["health"] == "ok", rule
        self.figures[name] = (fired, resolved)
        print(f"\n{name}: firing {fired:.1f} s after the condition, inactive {resolved:.1f} s after the fix began")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("prometheus-real")
    redis = RedisServer(work / "redis").start()
    car: Sidecar | None = None
    prom: Prometheus | None = None
    client: httpx.Client | None = None
    try:
        topology = work / "topology.json"
        topology.write_text(json.dumps(TOPOLOGY))
        car = launch_sidecar(work / "sidecar", redis.url, {"FRIDAY_TOPOLOGY_FILE": str(topology), **SETTINGS})
        client = car.client()
        s = Stack(car, redis, None, client)  # type: ignore[arg-type]
        for stream, spec in TOPOLOGY["streams"].items():  # one consumer in every group: no FridayGroupNoConsumer
            for group in spec["groups"]:
                assert s.read(stream, group) == []
        status = client.get("/api/v1/status").json()
        assert status["alerts"] == [], status["alerts"]
        key_file = work / "friday_api_key"
        key_file.write_text(car.api_key or "")
        key_file.chmod(0o600)
        config = prometheus_config(work / "prometheus.yml", car.http_url.removeprefix("http://"), key_file,
                                   rules_copy(work / "alerts.yml"))
        check = promtool("check", "config", str(config))
        assert check.returncode == 0, check.stdout + check.stderr
        prom = s.prom = start_prometheus(work, config)
        wait_for(lambda: [t for t in prom.api("/api/v1/targets")["activeTargets"] if t["health"] == "up"],
                 "the sidecar scraped (target up)", extra=lambda: json.dumps(prom.api("/api/v1/targets"))[:1500])
        wait_for(lambda: prom.query("friday_redis_up") and all(r["health"] == "ok" and not r["lastEvaluation"].startswith("0001")
                                                               for r in prom.rules().values()),
                 "the rules evaluated", extra=lambda: json.dumps(prom.rules())[:2000])
        yield s
        if s.figures:
            print("\nalert figures (firing after the condition / inactive after the fix, seconds):")
            for name, (fired, resolved) in s.figures.items():
                print(f"  {name:<28} {fired:5.1f} {resolved:5.1f}")
    finally:
        if prom is not None:
            prom.stop()
        if client is not None:
            client.close()
        if car is not None:
            car.stop()
        redis.stop()


def test_no_alert_while_all_is_well(stack: Stack) -> None:
    rules = stack.prom.rules()
    assert set(rules) == {r["alert"] for r in shipped_rules()}
    assert stack.prom.active() == {}
    assert all(r["state"] == "inactive" and r["health"] == "ok" for r in rules.values()), rules


def test_sidecar_down(stack: Stack) -> None:
    """The sidecar hung (SIGSTOP: scrapes time out): FridaySidecarDown fires with up = 0, the other rules go
    quiet (their series are stale); SIGCONT: the scrape is up again and every rule inactive. Before
    test_events_lost_to_trim: that rule's `unless ... offset` arm would see its counter as new after the gap."""
    try:
        stack.expect("FridaySidecarDown", lambda: stack.car.signal(signal.SIGSTOP), lambda: stack.car.signal(signal.SIGCONT),
                     {("FridaySidecarDown", "", ""): 0})
    finally:
        stack.car.signal(signal.SIGCONT)  # never leave it stopped for the next tests and the teardown


def test_pending_over_threshold(stack: Stack) -> None:
    stream, held = "alert.pending", []
    stack.expect("FridayGroupPending",
                 lambda: (stack.publish(stream, 4), held.extend(d["id"] for d in stack.read(stream, count=4))),
                 lambda: stack.drain(stream, held),
                 {("FridayGroupPending", stream, "workers"): 4})


def test_lag_over_threshold(stack: Stack) -> None:
    stream = "alert.lag"
    stack.expect("FridayGroupLag", lambda: stack.publish(stream, 4), lambda: stack.drain(stream),
                 {("FridayGroupLag", stream, "workers"): 4})


def test_backlog_over_threshold(stack: Stack) -> None:
    stream, held = "alert.backlog", []  # 3 not delivered + 2 pending = 5 > FRIDAY_ALERT_LENGTH 4 (neither over its own threshold)
    stack.expect("FridayGroupBacklog", lambda: (stack.publish(stream, 5), held.extend(d["id"] for d in stack.read(stream, count=2))),
                 lambda: stack.drain(stream, held), {("FridayGroupBacklog", stream, "workers"): 5})


def test_backlog_over_retention(stack: Stack) -> None:
    stream, held = "alert.retention", []  # retention 2: 1 not delivered + 2 pending = 3
    stack.expect("FridayBacklogOverRetention",
                 lambda: (stack.publish(stream, 3), held.extend(d["id"] for d in stack.read(stream, count=2))),
                 lambda: stack.drain(stream, held), {("FridayBacklogOverRetention", stream, "workers"): 3})


def test_group_without_consumer(stack: Stack) -> None:
    stream, group = "alert.noconsumer", "latecomer"

    def make() -> None:
        r = stack.client.post(f"/api/v1/streams/{stream}/groups", json={"group": group, "start": "new"})
        assert r.status_code == 201, r.text

    stack.expect("FridayGroupNoConsumer", make, lambda: stack.read(stream, group),
                 {("FridayGroupNoConsumer", stream, group): 0})


def test_dead_letters(stack: Stack) -> None:
    stream = "alert.dlq"  # max_deliveries 1: the first nack dead-letters

    def make() -> None:
        stack.publish(stream)
        [d] = stack.read(stream)
        r = stack.nack(stream, d["id"])
        assert r.status_code == 200 and r.json()["outcome"] == "dead_lettered", r.text

    def fix() -> None:
        r = stack.client.post(f"/api/v1/streams/{stream}/dlq/replay", json={"all": True})
        assert r.status_code == 200 and len(r.json()["replayed"]) == 1, r.text
        stack.drain(stream)

    stack.expect("FridayDeadLetters", make, fix, {("FridayDeadLetters", stream, ""): 1})


def test_events_lost_to_trim(stack: Stack) -> None:
    """A pending entry deleted behind the sidecar's back (XDEL), then nacked: acked away, counted as lost. The
    alert resolves once its window (15m shipped, 5 s here) has passed without another loss."""
    stream = "alert.lost"

    def make() -> None:
        stack.publish(stream)
        [d] = stack.read(stream)
        with redis_py.Redis.from_url(stack.redis.url) as r:
            assert r.xdel(stream, d["id"]) == 1
        resp = stack.nack(stream, d["id"])
        assert resp.status_code == 404 and "trimmed or deleted" in resp.text, resp.text

    stack.expect("FridayEventsLostToTrim", make, lambda: None, {("FridayEventsLostToTrim", stream, "workers"): None})


# ------------------------------------------------------------------------------------------- dashboard
def dashboard_targets() -> list[tuple[str, str]]:
    """(panel title, expr) of every target of every panel (rows' nested panels included)."""
    doc = json.loads(DASHBOARD.read_text())
    out = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))

    walk(doc["panels"])
    return out


def grafana_to_promql(expr: str) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", "15s").replace("$__range", "1h")
    expr = re.sub(r"\$\{?(stream|group)\}?", ".*", expr)
    assert "$" not in expr, f"a Grafana variable this test does not replace: {expr}"
    return expr


def traffic(stack: Stack) -> set[str]:
    """Publishes (single, batch, duplicate, channel), deliveries, acks, a retry, a dead letter, a reclaim, a loss to
    trim, and entries left pending, on dash.traffic (max_deliveries 2, claim_idle_ms 300, backoff 50 ms). Returns
    the ids delivered."""
    stream = "dash.traffic"
    # A series first scraped with the whole burst in it shows no increase (rate 0, quantiles NaN): one publish
    # first, seen by Prometheus, then the rest.
    stack.publish(stream)
    wait_for(lambda: stack.prom.query('friday_publish_duration_seconds_count{kind="stream"}'), "the publish histogram scraped")
    stack.publish(stream, 6)
    r = stack.client.post("/api/v1/events/publish/batch", json={"events": [{"stream": stream, "payload": {"b": i}} for i in range(4)]})
    assert r.status_code == 200, r.text
    for _ in range(2):
        stack.publish(stream, idempotency_key="dash-dup")
    stack.publish("dash.info")
    got = stack.read(stream, count=4)
    stack.ack(stream, [d["id"] for d in got[:2]])
    retry, doomed = got[2]["id"], got[3]["id"]
    for entry in (retry, doomed):
        assert stack.nack(stream, entry).json()["outcome"] == "retry"
    with redis_py.Redis.from_url(stack.redis.url) as rd:
        assert rd.xdel(stream, doomed) == 1  # pending, deleted: the retry finds it gone
    left_pending = []
    wait_for(lambda: left_pending.extend(stack.read(stream, count=10, consumer="a")) or
             retry in {d["id"] for d in left_pending}, "the retry redelivered")
    assert stack.nack(stream, retry).json()["outcome"] == "dead_lettered"  # second delivery of max 2
    time.sleep(0.4)  # past claim_idle_ms (300): consumer b reclaims what a still holds
    reclaimed: list[dict[str, Any]] = []
    wait_for(lambda: reclaimed.extend(stack.read(stream, count=10, consumer="b")) or reclaimed, "a reclaim by consumer b")
    # Left pending at their first delivery (the sweep dead-letters those at max_deliveries once idle): the
    # oldest-pending gauge. No read of the group follows, so nothing reclaims them.
    stack.publish(stream, 2)
    held = stack.read(stream, count=10, consumer="c")
    assert len(held) >= 2
    return {d["id"] for d in got + left_pending + reclaimed + held}


def settle_traffic(stack: Stack, delivered: set[str]) -> None:
    """Ack what the traffic left pending, replay its dead letters and ack them: no alert is left active (the loss
    to trim resolves once its window has passed)."""
    stream = "dash.traffic"
    stack.ack(stream, sorted(delivered))  # ids no longer pending count 0
    r = stack.client.post(f"/api/v1/streams/{stream}/dlq/replay", json={"all": True})
    assert r.status_code == 200, r.text
    stack.drain(stream)
    wait_for(lambda: not stack.prom.active(), "no alert active after the dashboard's traffic was settled",
             extra=lambda: f"active: {sorted(stack.prom.active())}")


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    targets = dashboard_targets()
    assert len(targets) >= 20
    delivered = traffic(stack)
    queries = {expr: grafana_to_promql(expr) for _, expr in targets}

    def missing() -> list[str]:
        out = []
        for expr, promql in queries.items():
            result = stack.prom.query(promql)  # status success, else fails here with Prometheus's error
            if not any(math.isfinite(float(s["value"][1])) for s in result):
                out.append(expr)
        return out

    elapsed = wait_for(lambda: not missing(), "every dashboard query returns finite data", extra=lambda: f"{missing()}")
    print(f"\n{len(queries)} dashboard queries all returned data {elapsed:.1f} s after the traffic")
    doc = json.loads(DASHBOARD.read_text())
    for var in doc["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((?P<sel>.+), *(?P<label>\w+)\)", var["query"]["query"])
        assert m, var
        series = stack.prom.query(grafana_to_promql(m["sel"]))
        assert series and all(m["label"] in s["metric"] for s in series), (var["name"], series[:3])
    settle_traffic(stack, delivered)


def test_redis_down(stack: Stack) -> None:
    """Last in the module: after the restart, each connection pooled before it answers one 503 (retriable)."""
    def fix() -> None:
        restart_redis_on_its_port(stack.redis)
        wait_until_ready(stack.car)
        # Pooled connections from before the restart (the ordinary and the reading client's) fail once each
        # (503, retriable) and reconnect: use them up, so that the next tests see a sidecar that serves again.
        streak = [0]

        def serves() -> bool:
            ok = all(r.status_code == 200 for r in (
                stack.client.get("/api/v1/status"),
                stack.client.post("/api/v1/events/publish", json={"stream": "dash.info", "payload": {}}),
                stack.client.post("/api/v1/streams/alert.lag/groups/workers/read", json={"consumer": "w", "block_ms": 0})))
            streak[0] = streak[0] + 1 if ok else 0
            return streak[0] >= 5

        wait_for(serves, "the sidecar serving again after the Redis restart")

    stack.expect("FridayRedisDown", stack.redis.stop, fix, {("FridayRedisDown", "", ""): 0})
