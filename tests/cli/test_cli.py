"""The `friday` CLI as a user runs it: a real process, a real Redis."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import redis

from tests.conftest import env_without_friday


def run(friday_exe: str, *args: str, env: dict[str, str], cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([friday_exe, *args], check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, input=input)


def make_env(redis_server, uniq: str, tmp_path: Path) -> dict[str, str]:
    topo = tmp_path / "topology.yaml"
    topo.write_text(
        f"streams:\n  {uniq}.email.received: [email-processor]\n  {uniq}.action.validated:\n    groups: [trust-manager, audit]\n"
        f"    retention: 3\nchannels: [{uniq}.file.uploaded]\n"
    )
    env = env_without_friday()
    env.update(FRIDAY_REDIS_URL=redis_server.url, FRIDAY_TOPOLOGY_FILE=str(topo), FRIDAY_KEY_PREFIX=f"friday:{uniq}:",
               FRIDAY_ALERT_LENGTH="2")
    return env


def test_setup_twice_then_status_json_matches_redis(friday_exe, redis_server, uniq, tmp_path):
    env = make_env(redis_server, uniq, tmp_path)
    first = run(friday_exe, "setup", env=env)
    assert first.returncode == 0, first.stderr
    assert f"created   group email-processor on {uniq}.email.received" in first.stdout
    assert "3 groups created, 0 already existed" in first.stdout
    second = run(friday_exe, "setup", env=env)
    assert second.returncode == 0 and "0 groups created, 3 already existed" in second.stdout

    stream = f"{uniq}.action.validated"
    for i in range(4):
        out = run(friday_exe, "publish", stream, json.dumps({"i": i}), env=env)
        assert out.returncode == 0, out.stderr
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    r.xreadgroup("trust-manager", "w1", {stream: ">"}, count=3)
    r.xack(stream, "trust-manager", r.xpending_range(stream, "trust-manager", "-", "+", 1)[0]["message_id"])

    data = json.loads(run(friday_exe, "status", "--json", env=env).stdout)
    st = next(s for s in data["streams"] if s["name"] == stream)
    info = r.xinfo_stream(stream)
    groups = {g["name"]: g for g in r.xinfo_groups(stream)}
    assert st["length"] == info["length"] == 4
    assert st["first_entry_id"] == info["first-entry"][0] and st["last_entry_id"] == info["last-entry"][0]
    for g in st["groups"]:
        assert g["pending"] == groups[g["name"]]["pending"]
        assert g["lag"] == groups[g["name"]]["lag"]
        assert g["last_delivered_id"] == groups[g["name"]]["last-delivered-id"]
        assert len(g["consumers"]) == groups[g["name"]]["consumers"]
    tm = next(g for g in st["groups"] if g["name"] == "trust-manager")
    assert (tm["pending"], tm["lag"]) == (2, 1)
    metrics = {(a["group"], a["metric"]) for a in st["alerts"]}
    assert ("trust-manager", "backlog") in metrics and ("audit", "no_consumer") in metrics  # 2 pending + 1 lag > 2

    table = run(friday_exe, "status", env=env).stdout
    assert stream in table and "alert(s)" in table and f"audit on {stream} has no consumer" in table


def test_trim_dlq_replay_and_group_commands(friday_exe, redis_server, uniq, tmp_path):
    env = make_env(redis_server, uniq, tmp_path)
    env["FRIDAY_MAX_DELIVERIES"] = "1"
    assert run(friday_exe, "setup", env=env).returncode == 0
    stream = f"{uniq}.action.validated"
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    ids = [run(friday_exe, "publish", stream, json.dumps({"i": i}), env=env).stdout.strip() for i in range(6)]
    out = run(friday_exe, "trim", "--stream", stream, env=env)
    assert "removed 0" in out.stdout and "3 unacknowledged kept" in out.stdout
    assert r.xlen(stream) == 6

    out = run(friday_exe, "group", "destroy", stream, "audit", env=env, input="n\n")
    assert out.returncode != 0 and "audit" in {g["name"] for g in r.xinfo_groups(stream)}
    out = run(friday_exe, "group", "destroy", stream, "audit", "--yes", env=env)
    assert out.returncode == 0, out.stderr
    assert "audit" not in {g["name"] for g in r.xinfo_groups(stream)}

    got = r.xreadgroup("trust-manager", "w", {stream: ">"}, count=10)[0][1]
    r.xack(stream, "trust-manager", *[e for e, _ in got[:5]])
    out = run(friday_exe, "trim", "--stream", stream, env=env)
    assert "removed 3" in out.stdout, out.stdout
    assert [e for e, _ in r.xrange(stream)] == ids[3:]

    out = run(friday_exe, "dlq", "list", stream, env=env)
    assert "no dead letters" in out.stdout
    out = run(friday_exe, "replay", stream, "trust-manager", "--to-id", ids[2], env=env)
    assert out.returncode == 0, out.stderr
    assert r.xinfo_groups(stream)[0]["last-delivered-id"] == ids[2]
    bad = run(friday_exe, "replay", stream, "trust-manager", "--to-id", "$", env=env)
    assert bad.returncode != 0 and "invalid entry id" in bad.stderr


def test_bad_configuration_says_how_to_fix(friday_exe, tmp_path):
    env = env_without_friday()
    env["FRIDAY_REDIS_URL"] = "http://localhost:6379"
    out = run(friday_exe, "status", env=env)
    assert out.returncode != 0 and "FRIDAY_REDIS_URL" in out.stderr and "redis://" in out.stderr
    env = env_without_friday()
    env["FRIDAY_TOPOLOGY_FILE"] = str(tmp_path / "t.yaml")
    (tmp_path / "t.yaml").write_text("streams:\n  bad*name: [g]\n")
    out = run(friday_exe, "config", env=env)
    assert out.returncode != 0 and "bad*name" in out.stderr
    (tmp_path / "t.yaml").write_text("streams:\n  s: {groups: [g], retention: 0}\n")
    out = run(friday_exe, "config", env=env)
    assert out.returncode != 0 and "retention must be an integer >= 1" in out.stderr


def test_embedded_redis_with_aof(friday_exe, tmp_path):
    env = env_without_friday()
    env["FRIDAY_DATA_DIR"] = str(tmp_path / "data")
    first = run(friday_exe, "setup", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "7 groups created" in first.stdout  # the seed's seven streams and groups
    eid = run(friday_exe, "publish", "email.received", '{"email_id": "x"}', env=env, cwd=tmp_path).stdout.strip()
    assert (tmp_path / "data" / "appendonlydir").is_dir()
    # the child Redis was stopped; a new one reloads the AOF: the event survived
    data = json.loads(run(friday_exe, "status", "--json", "--stream", "email.received", env=env, cwd=tmp_path).stdout)
    assert data["streams"][0]["last_entry_id"] == eid and data["streams"][0]["length"] == 1
    assert "0 groups created, 7 already existed" in run(friday_exe, "setup", env=env, cwd=tmp_path).stdout
    ps = subprocess.run(["pgrep", "-f", str(tmp_path / "data" / "redis.sock")], check=False, capture_output=True, text=True)
    assert ps.stdout.strip() == "", "the embedded redis-server was left running"
