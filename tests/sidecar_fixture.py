"""Fixtures that run the real sidecar (`friday serve`) as a subprocess against the test Redis.

* ``sidecar`` (session): one sidecar with an all-roles API key, the seed's topology plus
  ``allow_unknown_streams`` (tests use unique stream names and create their groups through
  the admin API), fast recovery settings (``FRIDAY_CLAIM_IDLE_MS=500``, short backoff,
  ``FRIDAY_MAX_DELIVERIES=3``).
* ``start_sidecar(**env)`` (function): starts another one with overrides, e.g.
  ``start_sidecar(FRIDAY_API_KEYS="a:admin,p:publish")``, ``start_sidecar(redis_url=other.url)``;
  a value of ``None`` removes the variable. Every sidecar it started is stopped at the end of the test.

Both wait until ``GET /readyz`` answers 200 (failing with the process log tail otherwise).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from friday_bus.core.settings import DEFAULT_CHANNELS, DEFAULT_STREAMS

from .conftest import env_without_friday, free_port

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0

TEST_ENV: dict[str, str] = {
    "FRIDAY_CLAIM_IDLE_MS": "500",
    "FRIDAY_CLAIM_INTERVAL_MS": "100",
    "FRIDAY_BACKOFF_INITIAL_MS": "100",
    "FRIDAY_BACKOFF_MULTIPLIER": "2",
    "FRIDAY_BACKOFF_MAX_MS": "400",
    "FRIDAY_MAX_DELIVERIES": "3",
    "FRIDAY_MONITOR_INTERVAL_S": "1",
    "FRIDAY_SHUTDOWN_GRACE_S": "5",
    "FRIDAY_LOG_LEVEL": "INFO",
}


def write_topology(path: Path) -> Path:
    data = {
        "streams": {name: {"groups": groups} for name, groups in DEFAULT_STREAMS.items()},
        "channels": list(DEFAULT_CHANNELS),
        "allow_unknown_streams": True,
    }
    path.write_text(json.dumps(data, indent=2))
    return path


def _env_name(key: str) -> str:
    return key if key.startswith("FRIDAY_") else "FRIDAY_" + key.upper()


def serve_command() -> list[str]:
    exe = Path(sys.executable).parent / "friday"
    if exe.exists():
        return [str(exe), "serve"]
    return [sys.executable, "-c",
            "from friday_bus.server import run; from friday_bus.core import load_settings; run(load_settings())"]


@dataclass
class Sidecar:
    """A running `friday serve` process."""

    http_url: str
    grpc_target: str
    api_key: str | None
    redis_url: str | None
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    tls_ca: Path | None = None
    exit_code: int | None = field(default=None)

    @property
    def key_prefix(self) -> str:
        return self.env.get("FRIDAY_KEY_PREFIX", "friday:")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def headers(self, key: str | None = ...) -> dict[str, str]:  # type: ignore[assignment]
        """Authorization header for ``key`` (default: the sidecar's key; None: no header)."""
        k = self.api_key if key is ... else key
        return {"Authorization": f"Bearer {k}"} if k else {}

    def client(self, key: str | None = ..., timeout: float = 40.0, **kw: Any) -> httpx.Client:  # type: ignore[assignment]
        kw.setdefault("verify", ssl.create_default_context(cafile=str(self.tls_ca)) if self.tls_ca else True)
        return httpx.Client(base_url=self.http_url, headers=self.headers(key), timeout=timeout, **kw)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        self.exit_code = self.proc.wait(timeout)
        return self.exit_code

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit within ``timeout``. Returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.exit_code = self.proc.wait()
        return self.exit_code

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.exit_code = self.proc.wait()


def launch_sidecar_retried(root: Path, redis_url: str | None, overrides: dict[str, Any] | None = None,
                           attempts: int = 3) -> Sidecar:
    """:func:`launch_sidecar` in ``root/sidecar-N``, retried: a free port picked for it may be
    taken by another process before the sidecar binds it (long-lived end-to-end fixtures)."""
    for attempt in range(1, attempts + 1):
        try:
            return launch_sidecar(root / f"sidecar-{attempt}", redis_url, overrides)
        except pytest.fail.Exception:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def launch_sidecar(workdir: Path, redis_url: str | None, overrides: dict[str, Any] | None = None,
                   wait_ready: bool = True) -> Sidecar:
    """Start `friday serve` in ``workdir`` (its own cwd, so no stray .env is read)."""
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, grpc_port = free_port(), free_port()
    while grpc_port == http_port:
        grpc_port = free_port()
    api_key = "test-" + secrets.token_urlsafe(24)
    env = env_without_friday()
    env.update(TEST_ENV)
    env.update({
        "FRIDAY_HTTP_HOST": "127.0.0.1",
        "FRIDAY_HTTP_PORT": str(http_port),
        "FRIDAY_GRPC_HOST": "127.0.0.1",
        "FRIDAY_GRPC_PORT": str(grpc_port),
        "FRIDAY_KEY_PREFIX": f"friday:{uuid.uuid4().hex[:10]}:",
        "FRIDAY_TOPOLOGY_FILE": str(write_topology(workdir / "topology.json")),
        "FRIDAY_DATA_DIR": str(workdir / "data"),
        "FRIDAY_API_KEYS": api_key,
        "PYTHONUNBUFFERED": "1",
    })
    if redis_url is not None:
        env["FRIDAY_REDIS_URL"] = redis_url
    for k, v in (overrides or {}).items():
        name = _env_name(k)
        if v is None:
            env.pop(name, None)
        else:
            env[name] = str(v)
    keys_spec = env.get("FRIDAY_API_KEYS", "")
    if keys_spec != api_key:
        first = keys_spec.split(",")[0].strip().split(":")[0] if keys_spec.strip() else ""
        api_key = first or None  # type: ignore[assignment]
    tls = "FRIDAY_TLS_CERT_FILE" in env
    scheme = "https" if tls else "http"
    log_path = workdir / f"sidecar-{http_port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(serve_command(), cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    car = Sidecar(
        http_url=f"{scheme}://127.0.0.1:{http_port}", grpc_target=f"127.0.0.1:{grpc_port}", api_key=api_key,
        redis_url=env.get("FRIDAY_REDIS_URL"), env=env, workdir=workdir, proc=proc, log_path=log_path,
        tls_ca=Path(env["FRIDAY_TLS_CERT_FILE"]) if tls else None,
    )
    if wait_ready:
        wait_until_ready(car)
    return car


def wait_until_ready(car: Sidecar, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not car.alive():
            pytest.fail(f"the sidecar exited with code {car.proc.returncode} before it was ready:\n{car.log_tail()}")
        try:
            r = httpx.get(car.http_url + "/readyz", timeout=2.0, verify=False)
            if r.status_code == 200:
                return
            last = f"{r.status_code} {r.text[:300]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    car.kill()
    pytest.fail(f"the sidecar was not ready within {timeout:.0f} s (last /readyz: {last}):\n{car.log_tail()}")


@pytest.fixture(scope="session")
def sidecar(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """One sidecar for the session (all-roles key in ``.api_key``)."""
    car = launch_sidecar(tmp_path_factory.mktemp("sidecar"), redis_server.url)
    yield car
    car.stop()


@pytest.fixture
def start_sidecar(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sidecar]]:
    """Factory: ``start_sidecar(FRIDAY_API_KEYS=..., redis_url=..., wait_ready=True)``; all stopped after the test."""
    started: list[Sidecar] = []

    def factory(wait_ready: bool = True, **overrides: Any) -> Sidecar:
        redis_url = overrides.pop("redis_url", overrides.pop("FRIDAY_REDIS_URL", redis_server.url))
        car = launch_sidecar(tmp_path_factory.mktemp("sidecar"), redis_url, overrides, wait_ready=wait_ready)
        started.append(car)
        return car

    yield factory
    for car in started:
        car.stop()


def openssl_self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl CLI is missing: run `make test`, which installs it (apt-get install openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key), "-out", str(cert),
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, env={**os.environ, "OPENSSL_CONF": os.environ.get("OPENSSL_CONF", "/dev/null")},
    )
    return cert, key
