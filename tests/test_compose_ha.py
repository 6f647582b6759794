"""Validate the high-availability variant (docker-compose.ha.yml over docker-compose.yml) with the
real Compose CLI (no engine needed), and the sidecar's environment in it with the sidecar's own
settings validation.

`docker compose -f docker-compose.yml -f docker-compose.ha.yml --env-file .env.example config`
parses, merges, interpolates and validates both files against the Compose specification; we
then check what the HA stack relies on: a master and a replica with AOF, three sentinels that
write their config at start (only into a new volume: they rewrite it) with host names resolved
and announced, and the sidecar in sentinel mode with replica-acknowledged publishes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from friday_bus.core.errors import ConfigError
from friday_bus.core.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SENTINELS = ["sentinel-1", "sentinel-2", "sentinel-3"]


def _compose_config() -> dict:
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("docker client binary not found on PATH: install the docker CLI and the compose "
                    "plugin (deploy/install-compose.sh) to validate docker-compose.ha.yml")
    probe = subprocess.run([docker, "compose", "version"], check=False, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"`docker compose` is not available (no compose CLI plugin): run deploy/install-compose.sh\n"
                    f"{probe.stdout}{probe.stderr}")
    proc = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.ha.yml"),
         "--env-file", str(ROOT / ".env.example"), "config", "--format", "json"],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    return _compose_config()


def _flag(cmd: list[str], name: str) -> list[str]:
    i = cmd.index(name)
    return cmd[i + 1:i + 3]


def test_services(config: dict) -> None:
    assert set(config["services"]) == {"redis", "redis-replica", *SENTINELS, "sidecar", "n8n", "prometheus", "grafana"}


def test_master_and_replica(config: dict) -> None:
    master, replica = config["services"]["redis"], config["services"]["redis-replica"]
    for node, name in ((master, "redis"), (replica, "redis-replica")):
        cmd = node["command"]
        assert node["image"].startswith("redis:7")
        assert cmd[cmd.index("--appendonly") + 1] == "yes"
        assert cmd[cmd.index("--replica-announce-ip") + 1] == name  # announced by service name
        assert any(v["type"] == "volume" and v["target"] == "/data" for v in node["volumes"])
        assert node["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "--replicaof" not in master["command"]
    assert _flag(replica["command"], "--replicaof") == ["redis", "6379"]
    assert replica["depends_on"]["redis"]["condition"] == "service_healthy"
    assert {v["source"] for v in master["volumes"]} != {v["source"] for v in replica["volumes"]}


def sentinel_conf(service: dict, tmp_path: Path) -> list[str]:
    """Run the sentinel's start script in a real shell (its /data a temp folder, redis-server not
    started) and return the config lines it wrote."""
    sh, dash_c, script = service["command"]
    assert (sh, dash_c) == ("sh", "-c")
    script = script.replace("$$", "$").replace("/data/", f"{tmp_path}/").replace("exec redis-server", "exit 0; :")
    env = {"PATH": "/usr/bin:/bin", **service["environment"]}
    subprocess.run(["sh", "-c", script], check=True, env=env, timeout=10)
    return (tmp_path / "sentinel.conf").read_text().splitlines()


@pytest.mark.parametrize("name", SENTINELS)
def test_sentinels_write_their_conf_at_start(config: dict, tmp_path: Path, name: str) -> None:
    service = config["services"][name]
    assert service["image"].startswith("redis:7")
    assert "redis-server \"$$conf\" --sentinel" in service["command"][2]
    assert [v["target"] for v in service["volumes"]] == ["/data"]  # its rewritten conf survives restarts
    assert service["volumes"][0]["source"] == f"{name}-data"
    lines = sentinel_conf(service, tmp_path)
    assert lines.index("sentinel resolve-hostnames yes") < lines.index("sentinel monitor friday redis 6379 2")
    assert "sentinel announce-hostnames yes" in lines
    assert f"sentinel announce-ip {name}" in lines
    assert "port 26379" in lines
    assert any(x.startswith("sentinel down-after-milliseconds friday ") for x in lines)
    # a second start keeps what the sentinel rewrote (it follows the master after a failover)
    (tmp_path / "sentinel.conf").write_text("sentinel known-replica friday redis 6379\n# rewritten\n")
    assert sentinel_conf(service, tmp_path) == ["sentinel known-replica friday redis 6379", "# rewritten"]
    for node in ("redis", "redis-replica"):
        assert service["depends_on"][node]["condition"] == "service_healthy"
    assert service["healthcheck"]["test"][:3] == ["CMD", "redis-cli", "-p"]


def test_sidecar_in_sentinel_mode(config: dict) -> None:
    sidecar = config["services"]["sidecar"]
    env = sidecar["environment"]
    assert env["FRIDAY_REDIS_MODE"] == "sentinel"
    assert env["FRIDAY_REDIS_SENTINELS"] == ",".join(f"{s}:26379" for s in SENTINELS)
    assert env["FRIDAY_REDIS_SENTINEL_MASTER"] == "friday"
    assert env["FRIDAY_MIN_REPLICAS_ACK"] == "1"
    for s in SENTINELS:
        assert sidecar["depends_on"][s]["condition"] == "service_healthy"
    assert sidecar["depends_on"]["redis"]["condition"] == "service_healthy"  # from the base file
    assert env["FRIDAY_API_KEYS"] == "change-me-friday-api-key"


def sidecar_env(config: dict) -> dict[str, str]:
    """What the sidecar container gets: .env (here .env.example, its env_file) overridden by `environment`."""
    env: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and key.startswith("FRIDAY_"):
            env[key.strip()] = value.strip()
    env.update({k: str(v) for k, v in config["services"]["sidecar"]["environment"].items()})
    return env


def load_container_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import os

    for k in list(os.environ):
        if k.startswith("FRIDAY_"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return load_settings(_env_file=None)


def test_sidecar_environment_passes_the_sidecars_validation(config: dict, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    s = load_container_settings(sidecar_env(config), monkeypatch, tmp_path)
    assert s.redis_mode == "sentinel"
    assert s.sentinel_addresses == [(name, 26379) for name in SENTINELS]
    assert s.redis_sentinel_master == "friday"
    assert s.min_replicas_ack == 1
    assert not s.embedded
    assert s.replica_ack_timeout_ms < s.redis_socket_timeout_s * 1000


def test_the_validation_is_real(config: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The same environment without the sentinels' list is refused, saying what to set."""
    env = sidecar_env(config)
    del env["FRIDAY_REDIS_SENTINELS"]
    with pytest.raises(ConfigError, match="FRIDAY_REDIS_SENTINELS"):
        load_container_settings(env, monkeypatch, tmp_path)
