"""`friday serve` on the embedded default: its own redis-server with AOF, stopped cleanly on exit."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import env_without_friday, free_port


def start(friday_exe: str, data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = env_without_friday()
    env.update(FRIDAY_DATA_DIR=str(data), FRIDAY_HTTP_PORT=str(port), FRIDAY_GRPC_PORT=str(free_port()))
    proc = subprocess.Popen([friday_exe, "serve"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"friday serve did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def redis_children(data: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"redis-server.*{data}"], capture_output=True, text=True, check=False)
    return out.stdout.split()


def test_serve_embedded_persists_and_stops_its_redis(friday_exe, tmp_path):
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    proc, url = start(friday_exe, data, log)
    try:
        assert len(redis_children(data)) == 1
        r = httpx.post(f"{url}/api/v1/events/publish", json={"stream": "email.received", "payload": {"email_id": "e1", "n": 2}})
        assert r.status_code == 200, r.text
        eid = r.json()["id"]
        status = httpx.get(f"{url}/api/v1/streams/email.received/status").json()
        assert status["length"] == 1 and status["last_entry_id"] == eid
        assert [g["name"] for g in status["groups"]] == ["email-processor"]  # setup ran at start
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    assert redis_children(data) == [], "the embedded redis-server outlived friday serve"
    assert (data / "appendonlydir").is_dir()

    # a new run reloads the AOF: the event is still there, and still unread by its group
    proc, url = start(friday_exe, data, log)
    try:
        body = httpx.post(f"{url}/api/v1/streams/email.received/groups/email-processor/read",
                          json={"consumer": "w1", "count": 10, "block_ms": 1000}).json()
        assert [(d["id"], d["payload"]) for d in body["deliveries"]] == [(eid, {"email_id": "e1", "n": 2})]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_killed_sidecar_takes_its_redis_down(friday_exe, tmp_path):
    data = tmp_path / "data"
    proc, _ = start(friday_exe, data, tmp_path / "serve.log")
    assert len(redis_children(data)) == 1
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 10
    while redis_children(data) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert redis_children(data) == [], "the embedded redis-server was orphaned by a SIGKILLed sidecar"
