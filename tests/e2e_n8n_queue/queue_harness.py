"""n8n 2.x in queue mode for end-to-end tests: PostgreSQL, a Redis for Bull, `n8n start` + `n8n worker`.

Builds on tests/e2e_n8n/n8n_harness.py (imported, not copied):

* ``PostgresCluster``: a throwaway cluster made with Debian's ``initdb`` in a temp folder,
  on a free loopback port (as the ``postgres`` user when run as root: postgres refuses root);
* ``BullRedis``: the repo's test ``RedisServer`` (tests/conftest.py), used only by n8n's
  Bull queue, never by the sidecar;
* ``queue_env(pg, redis)``: what main and worker share: ``EXECUTIONS_MODE=queue``,
  ``QUEUE_BULL_REDIS_*``, ``DB_TYPE=postgresdb`` + ``DB_POSTGRESDB_*`` (n8n documents
  PostgreSQL for queue mode; SQLite is a per-process file and cannot be shared);
* ``N8nWorker``: an ``N8nInstance`` that runs ``n8n worker --concurrency=N`` with its own
  user folder (its own copy of the community package: a worker loads node types from its
  own ``~/.n8n/nodes``), its own task-broker port and its health server
  (``QUEUE_HEALTH_CHECK_ACTIVE``/``QUEUE_HEALTH_CHECK_PORT``) as readiness probe;
* ``QueueSet``: the whole set, started and closed together.

``queue_env`` also keeps the last 1000 finished Bull jobs (``BULL_RETENTION_ENV``): with
n8n's default (delete at once) the main sometimes never learns that a job finished, and a
trigger waiting for the outcome waits forever (see BULL_RETENTION_ENV).

Main and worker must share ``N8N_ENCRYPTION_KEY`` (the worker decrypts the credentials the
main stored in PostgreSQL); both N8nInstance objects use the harness's fixed key.

Standard library, httpx and the repo's test modules only (the benchmark uses it too).
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import httpx
import redis

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
for _p in (str(REPO_ROOT / "tests" / "e2e_n8n"), str(REPO_ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from n8n_harness import N8nError, N8nInstall, N8nInstance, _free_ports, _pdeathsig_prefix, free_port

from tests.conftest import RedisServer

PG_HINT = "install Debian's PostgreSQL server: `apt-get install -y postgresql` (make test's system step should do it)"

# Bull settings so that a job whose worker died is noticed within seconds, not a minute:
# n8n runs Bull with maxStalledCount 0, so a stalled job fails ("job stalled more than
# maxStalledCount") once a live worker's stalled check sees its lock expired.
FAST_STALL_ENV = {
    "QUEUE_WORKER_LOCK_DURATION": "5000",
    "QUEUE_WORKER_LOCK_RENEW_TIME": "1000",
    "QUEUE_WORKER_STALLED_INTERVAL": "2000",
}


# REQUIRED for any trigger that waits for the execution's outcome (emit's donePromise) in
# queue mode. n8n 2.40 adds Bull jobs with removeOnComplete/removeOnFail = these values
# (default 0: a finished job is deleted at once), and the main only settles an execution
# (postExecutePromise -> the trigger's done promise) when Bull's job.finished() returns.
# job.finished() subscribes to the queue's completion events, then looks the job up in the
# completed/failed sets: a job the worker finished in that window was already deleted, so
# the lookup misses it, its event came too early, and job.finished() never settles. Observed
# here about once per 30 fast executions: the execution stays "running" in the main (absent
# from the public API), the trigger's done promise never settles, the trigger keeps the
# event in progress forever and loses one parallel slot for good. Keeping the last N
# finished jobs closes the window (the lookup finds the job); 1000 jobs cost a few MB.
BULL_RETENTION_ENV = {
    "N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED": "1000",
    "N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED": "1000",
}


class PostgresNotInstalled(RuntimeError):
    """No initdb/postgres binaries found."""


def _pg_bindir() -> Path:
    explicit = os.environ.get("FRIDAY_PG_BINDIR")
    if explicit:
        return Path(explicit)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresNotInstalled(f"no PostgreSQL server binaries (initdb) found; {PG_HINT}")


_LIVE_PG: weakref.WeakSet[PostgresCluster] = weakref.WeakSet()


@atexit.register
def _stop_all_pg() -> None:  # pragma: no cover - safety net
    for pg in list(_LIVE_PG):
        pg.stop()


class PostgresCluster:
    """A PostgreSQL cluster of its own: initdb in a temp folder, TCP on a free loopback port,
    trust auth for loopback only, durability off (test data). The server gets SIGKILL if the
    test process dies (setpriv --pdeathsig), and is stopped (fast shutdown) by stop()."""

    def __init__(self, user: str = "n8n", database: str = "n8n", password: str = "n8n-e2e") -> None:
        self.bindir = _pg_bindir()
        self.user, self.database, self.password = user, database, password
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        # Postgres refuses to run as root: then run it as the `postgres` system user, in a
        # folder that user owns (pytest's tmp folders are 0700 root).
        self.run_as: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresNotInstalled(f"running as root and there is no `postgres` user; {PG_HINT}") from exc
            self.run_as = "postgres"
        self.root = Path(tempfile.mkdtemp(prefix="friday-pg-"))
        if self.run_as:
            shutil.chown(self.root, self.run_as, self.run_as)
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        _LIVE_PG.add(self)

    def _as_user(self) -> list[str]:
        if self.run_as is None:
            return []
        return [shutil.which("setpriv") or "setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}", "--init-groups", "--"]

    def _run(self, *cmd: str, timeout: float = 60) -> str:
        proc = subprocess.run(
            [*self._as_user(), *cmd], capture_output=True, text=True, timeout=timeout, cwd=self.root,
            env={**os.environ, "LC_ALL": "C.UTF-8", "PGPASSWORD": self.password}, check=False, stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}\n{self.log_tail()}")
        return proc.stdout

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no postgres log)"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 30) -> Self:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        if self.run_as:
            shutil.chown(pwfile, self.run_as, self.run_as)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions",
        )
        for _ in range(5):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [*_pdeathsig_prefix(), *self._as_user(), str(self.bindir / "postgres"), "-D", str(self.data),
                     "-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                     "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                     "-c", "max_connections=60", "-c", "shared_buffers=64MB"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root,
                )  # fmt: skip
            if self._wait_ready(timeout):
                self._run(str(self.bindir / "createdb"), "-h", str(self.root), "-p", str(self.port), "-U", self.user, self.database)
                return self
            self.stop(remove=False)
        raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            probe = subprocess.run(
                [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if probe.returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def psql(self, sql: str) -> str:
        """Run SQL as the cluster's superuser (unix socket), tuples only, `|`-separated."""
        return self._run(str(self.bindir / "psql"), "-h", str(self.root), "-p", str(self.port), "-U", self.user,
                         "-d", self.database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql)  # fmt: skip

    def stop(self, timeout: float = 20, *, remove: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BullRedis(RedisServer):
    """The repo's test redis-server, for n8n's Bull queue only (not the sidecar's Redis)."""

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)


def queue_env(pg: PostgresCluster, bull: BullRedis, *, keep_finished_jobs: bool = True, **extra: str) -> dict[str, str]:
    """Settings main and worker share (n8n's queue-mode documentation), plus BULL_RETENTION_ENV
    unless keep_finished_jobs=False (n8n's defaults, to reproduce the lost done promise)."""
    env = {
        "EXECUTIONS_MODE": "queue",
        "QUEUE_BULL_REDIS_HOST": "127.0.0.1",
        "QUEUE_BULL_REDIS_PORT": str(bull.port),
        "QUEUE_BULL_PREFIX": "bull",
        "DB_TYPE": "postgresdb",
        "DB_POSTGRESDB_HOST": "127.0.0.1",
        "DB_POSTGRESDB_PORT": str(pg.port),
        "DB_POSTGRESDB_DATABASE": pg.database,
        "DB_POSTGRESDB_USER": pg.user,
        "DB_POSTGRESDB_PASSWORD": pg.password,
        "DB_POSTGRESDB_POOL_SIZE": "4",
        **FAST_STALL_ENV,
        **(BULL_RETENTION_ENV if keep_finished_jobs else {}),
    }
    env.update(extra)
    return env


class N8nWorker(N8nInstance):
    """`n8n worker --concurrency=N` on the shared database and Bull queue.

    ``port`` is the worker's health server (``QUEUE_HEALTH_CHECK_PORT``): readiness is its
    ``/healthz/readiness`` (DB + Redis connected). The worker has no REST or public API."""

    def __init__(self, install: N8nInstall, user_folder: str | os.PathLike, *, concurrency: int = 5,
                 env: Mapping[str, str] | None = None, **kw: Any) -> None:
        super().__init__(install, user_folder, env=env, **kw)
        self.concurrency = concurrency
        self.extra_env.update(
            {"QUEUE_HEALTH_CHECK_ACTIVE": "true", "QUEUE_HEALTH_CHECK_PORT": str(self.port), "N8N_WORKER_SERVER_ADDRESS": "127.0.0.1"}
        )

    def start(self, timeout: float = 120) -> Self:  # type: ignore[override]
        # Same as N8nInstance.start() but for the command and the readiness probe (the
        # harness hard-codes `n8n start` and /rest/settings).
        if self.running:
            raise RuntimeError("the worker is already running")
        self._starts += 1
        self.n8n_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== worker start #{self._starts} health={self.port} broker={self.broker_port} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [*_pdeathsig_prefix(), str(self.install.n8n_bin), "worker", f"--concurrency={self.concurrency}"],
                env=self.env(), cwd=self.user_folder, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.monotonic() - self.started_at
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise self._fail(f"n8n worker exited with code {code} before becoming ready")
                try:
                    # 200 once the job processor is registered (markAsReady after setupWorker).
                    if client.get("/healthz/readiness").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        raise self._fail(f"n8n worker not ready on {self.base_url} within {timeout:.0f}s")


class QueueSet:
    """PostgreSQL + Bull Redis + n8n main (`n8n start`, EXECUTIONS_MODE=queue) + one worker.

    ``prepare(tarball, credentials)`` installs the package in both user folders and imports
    the credentials (CLI, into PostgreSQL) before anything starts; ``start()`` starts the
    main, sets up the owner + API key, then the worker. ``close()`` stops everything, in
    reverse order, whatever state it is in."""

    def __init__(self, install: N8nInstall, root: Path, *, concurrency: int = 5, log_level: str = "info",
                 keep_finished_jobs: bool = True, extra_env: Mapping[str, str] | None = None) -> None:
        self.install = install
        self.root = Path(root)
        self.pg = PostgresCluster()
        self.redis = BullRedis(self.root / "bull-redis")
        self.concurrency = concurrency
        self.log_level = log_level
        self.keep_finished_jobs = keep_finished_jobs
        self.extra_env = dict(extra_env or {})
        self.main: N8nInstance | None = None
        self.worker: N8nWorker | None = None

    def start_backends(self) -> None:
        self.pg.start()
        self.redis.start()
        env = queue_env(self.pg, self.redis, keep_finished_jobs=self.keep_finished_jobs, N8N_LOG_LEVEL=self.log_level, **self.extra_env)
        main_port, main_broker, worker_health, worker_broker = _free_ports(4)
        self.main = N8nInstance(self.install, self.root / "main", port=main_port, broker_port=main_broker, env=env)
        self.worker = N8nWorker(
            self.install, self.root / "worker", port=worker_health, broker_port=worker_broker, env=env, concurrency=self.concurrency,
        )

    def prepare(self, tarball: Path, credentials: list[dict[str, Any]]) -> None:
        assert self.main is not None and self.worker is not None, "call start_backends() first"
        self.main.install_package_tarball(tarball)
        self.worker.install_package_tarball(tarball)
        self.main.import_credentials(credentials)

    def start(self) -> None:
        assert self.main is not None and self.worker is not None
        self.main.start()
        self.main.setup_owner()
        self.main.create_api_key()
        self.worker.start()

    def logs(self, lines: int = 40) -> str:
        parts = []
        for name, inst in (("main", self.main), ("worker", self.worker)):
            if inst is not None:
                parts.append(f"--- n8n {name} log tail ---\n{inst.log_tail(lines)}")
        return "\n".join(parts)

    def close(self) -> None:
        errors: list[BaseException] = []
        for step in (
            lambda: self.worker and self.worker.close(),
            lambda: self.main and self.main.close(),
            self.redis.stop,
            self.pg.stop,
        ):
            try:
                step()
            except BaseException as exc:  # noqa: BLE001 - keep cleaning up
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["BULL_RETENTION_ENV", "FAST_STALL_ENV", "PG_HINT", "BullRedis", "N8nError", "N8nWorker", "PostgresCluster", "PostgresNotInstalled", "QueueSet", "queue_env"]
