"""The embedded default: a local ``redis-server`` child process with AOF persistence.

Used when ``FRIDAY_REDIS_URL`` is unset. Redis listens only on a unix socket inside the
data folder (mode 700, no TCP port to clash with or expose), writes its AOF files there,
and is stopped with SIGTERM (a clean shutdown that flushes the AOF) when the sidecar exits.
If the sidecar itself is killed, the kernel sends the child SIGTERM too (PR_SET_PDEATHSIG via setpriv).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .errors import ConfigError
from .replies import ReplyKind, reply_kind

log = logging.getLogger("friday.embedded")
_MAX_SOCKET_PATH = 100

INSTALL_HINT = (
    "redis-server (>= 7.0) is not installed. On Debian/Ubuntu: `sudo apt-get install -y redis-server` "
    "(or run `make run`, which installs it). Elsewhere install Redis 7, or point FRIDAY_REDIS_URL at a Redis server."
)


def _pdeathsig_prefix() -> list[str]:
    """`setpriv --pdeathsig TERM` (util-linux) makes the kernel stop Redis if the sidecar dies.

    Done with an exec wrapper rather than a preexec_fn, which is unsafe in a threaded process.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []


def redis_server_version(binary: str) -> tuple[int, int, int]:
    path = shutil.which(binary)
    if path is None:
        raise ConfigError(INSTALL_HINT)
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if not m:
        raise ConfigError(f"cannot tell the version of {path}: {out.strip()!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def socket_alive(path: Path) -> bool:
    """True if a Redis answers PING on this unix socket."""
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError:
        return False
    if reply.startswith(b"+PONG"):
        return True
    # a Redis that wants a password answers too
    return reply.startswith(b"-") and reply_kind(reply[1:].decode("utf-8", "replace")) is ReplyKind.NOAUTH


class EmbeddedRedis:
    def __init__(self, data_dir: Path, binary: str = "redis-server", appendfsync: str = "everysec") -> None:
        self.data_dir = data_dir.resolve()
        self.binary = binary
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def start(self, timeout: float = 15.0) -> str:
        """Start redis-server and wait until it answers. Returns its URL. Raises ConfigError."""
        version = redis_server_version(self.binary)
        if version < (7, 0, 0):
            raise ConfigError(f"{self.binary} is Redis {'.'.join(map(str, version))}; the sidecar needs Redis >= 7.0")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket_path)) > _MAX_SOCKET_PATH:
            raise ConfigError(f"FRIDAY_DATA_DIR {self.data_dir} is too long for a unix socket path; choose a shorter folder")
        if socket_alive(self.socket_path):
            raise ConfigError(
                f"a Redis already runs on {self.socket_path} (another `friday serve` on the same FRIDAY_DATA_DIR?); "
                "stop it or choose another FRIDAY_DATA_DIR"
            )
        self.socket_path.unlink(missing_ok=True)
        args = [
            *_pdeathsig_prefix(),
            shutil.which(self.binary) or self.binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
            "--logfile", str(self.log_path),
            "--save", "3600 1 300 100 60 10000",
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ConfigError(f"embedded redis-server exited with code {self.proc.returncode}:\n{self._log_tail()}")
            if socket_alive(self.socket_path):
                log.info("embedded Redis %s started (pid %d), data in %s", ".".join(map(str, version)), self.proc.pid, self.data_dir)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise ConfigError(f"embedded redis-server did not answer within {timeout:.0f}s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (Redis flushes the AOF and exits), then SIGKILL after ``timeout``."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("embedded Redis did not stop within %.0fs; killing it", timeout)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.info("embedded Redis stopped")
