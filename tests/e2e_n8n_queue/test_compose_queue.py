"""Validate the queue-mode override docker-compose.queue.yml with the real Compose CLI (no engine).

`docker compose -f docker-compose.yml -f docker-compose.queue.yml config` merges the two files,
interpolates them (with .env.example, which documents the override's variables too) and validates the result against the Compose specification; we then check the parts
queue mode relies on, as tests/test_compose.py does for the base stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
N8N_SERVICES = ("n8n", "n8n-worker")


def _compose(*extra_env_files: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("docker client binary not found on PATH: install the docker CLI and the compose plugin (deploy/install-compose.sh)")
    cmd = [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.queue.yml"),
           "--env-file", str(ROOT / ".env.example")]  # fmt: skip
    for path in extra_env_files:
        cmd += ["--env-file", str(path)]
    cmd += ["config", "--format", "json"]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ROOT, timeout=60, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def config() -> dict:
    proc = _compose()
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_services(config: dict) -> None:
    assert set(config["services"]) == {"redis", "sidecar", "n8n", "n8n-worker", "postgres", "n8n-redis", "prometheus", "grafana"}


def test_main_and_worker_share_queue_database_and_key(config: dict) -> None:
    main, worker = (config["services"][name]["environment"] for name in N8N_SERVICES)
    for env in (main, worker):
        assert env["EXECUTIONS_MODE"] == "queue"
        assert env["DB_TYPE"] == "postgresdb"  # overrides the base file's sqlite
        assert env["DB_POSTGRESDB_HOST"] == "postgres"
        # n8n's Bull queue on its own Redis, not the sidecar's event store.
        assert env["QUEUE_BULL_REDIS_HOST"] == "n8n-redis" and env["QUEUE_BULL_REDIS_PORT"] == "6379"
        # Finished Bull jobs are kept, so the main always learns a job's outcome (queue_harness.BULL_RETENTION_ENV).
        assert int(env["N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED"]) > 0 and int(env["N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED"]) > 0
    shared = ("N8N_ENCRYPTION_KEY", "DB_POSTGRESDB_DATABASE", "DB_POSTGRESDB_USER", "DB_POSTGRESDB_PASSWORD", "QUEUE_BULL_REDIS_HOST")
    assert {k: main[k] for k in shared} == {k: worker[k] for k in shared}
    postgres = config["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == main["DB_POSTGRESDB_PASSWORD"]
    assert postgres["POSTGRES_USER"] == main["DB_POSTGRESDB_USER"] and postgres["POSTGRES_DB"] == main["DB_POSTGRESDB_DATABASE"]
    # The sidecar keeps its own Redis.
    assert config["services"]["sidecar"]["environment"]["FRIDAY_REDIS_URL"] == "redis://redis:6379/0"


def test_worker(config: dict) -> None:
    worker, main = config["services"]["n8n-worker"], config["services"]["n8n"]
    assert worker["command"][0] == "worker" and worker["command"][1].startswith("--concurrency=")
    # The same image as the main: n8n with the Friday package bundled where a worker loads nodes.
    assert worker["image"] == main["image"] and worker["build"] == main["build"]
    assert worker["environment"]["QUEUE_HEALTH_CHECK_ACTIVE"] == "true"
    assert "/healthz/readiness" in " ".join(worker["healthcheck"]["test"])
    assert worker["environment"]["QUEUE_HEALTH_CHECK_PORT"] in " ".join(worker["healthcheck"]["test"])
    assert "ports" not in worker  # no editor, no API
    assert not worker.get("volumes")  # stateless: scalable with --scale n8n-worker=N
    assert worker["depends_on"]["n8n"]["condition"] == "service_healthy"  # the main migrates the DB first
    for dep in ("postgres", "n8n-redis", "sidecar"):
        assert worker["depends_on"][dep]["condition"] == "service_healthy"


def test_main_waits_for_database_and_queue(config: dict) -> None:
    main = config["services"]["n8n"]
    for dep in ("postgres", "n8n-redis", "sidecar"):
        assert main["depends_on"][dep]["condition"] == "service_healthy"
    assert [p["target"] for p in main["ports"]] == [5678]


def test_postgres_and_queue_redis(config: dict) -> None:
    pg = config["services"]["postgres"]
    assert pg["image"].startswith("postgres:")
    assert int(pg["image"].split(":")[1].split("-")[0]) >= 17  # n8n 2.40 supports PostgreSQL 17+ (16: compatibility)
    assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert any(v["type"] == "volume" and v["target"] == "/var/lib/postgresql/data" for v in pg["volumes"])
    assert "ports" not in pg
    queue = config["services"]["n8n-redis"]
    cmd = queue["command"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert queue["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    queue_volumes = {v["source"] for v in queue["volumes"]}
    sidecar_volumes = {v["source"] for v in config["services"]["redis"]["volumes"]}
    assert queue_volumes and not queue_volumes & sidecar_volumes
    assert {"postgres-data", "n8n-redis-data", "redis-data", "n8n-data"} <= set(config["volumes"])


def test_database_password_is_required() -> None:
    proc = _compose(env={"N8N_POSTGRES_PASSWORD": ""})
    assert proc.returncode != 0
    assert "N8N_POSTGRES_PASSWORD" in proc.stderr
