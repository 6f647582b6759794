"""Shared fixtures: a real redis-server on a free loopback port, started by the tests themselves."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server (AOF on) in a temp folder, on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `make test` (it installs it) or `apt-get install redis-server`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                 "--appendonly", "yes", "--save", "", "--daemonize", "no", "--logfile", str(self.workdir / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        pytest.fail(f"could not start redis-server: {(self.workdir / 'redis.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def uniq() -> str:
    """A unique prefix for stream names, so tests never share a stream."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def friday_exe() -> str:
    exe = Path(sys.executable).parent / "friday"
    if not exe.exists():
        pytest.fail("the `friday` console script is missing: install the project with `pip install -e .`")
    return str(exe)


def env_without_friday() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FRIDAY_")}


# Fixtures that start the real sidecar process (HTTP + gRPC) live in their own plugin module; the
# real Redis topologies (cluster, sentinel set, standalone redis/valkey) in tests/topologies, shared
# with the conformance suite and the many-sidecars / failover tests.
pytest_plugins = ["tests.sidecar_fixture", "tests.topologies.fixtures"]
