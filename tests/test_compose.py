"""Validate the production docker-compose.yml with the real Compose CLI (no engine needed).

`docker compose config` parses, interpolates (with .env.example) and validates the file
against the Compose specification; we then check the parts the stack relies on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose_config() -> dict:
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail(
            "docker client binary not found on PATH: install the docker CLI and the compose "
            "plugin (deploy/install-compose.sh) to validate docker-compose.yml"
        )
    probe = subprocess.run([docker, "compose", "version"], check=False, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(
            "`docker compose` is not available (no compose CLI plugin): run "
            f"deploy/install-compose.sh\n{probe.stdout}{probe.stderr}"
        )
    proc = subprocess.run(
        [
            docker,
            "compose",
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--env-file",
            str(ROOT / ".env.example"),
            "config",
            "--format",
            "json",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def config() -> dict:
    return _compose_config()


def test_services(config: dict) -> None:
    assert set(config["services"]) == {"redis", "sidecar", "n8n", "prometheus", "grafana"}


def test_redis_aof_volume_healthcheck(config: dict) -> None:
    redis = config["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    cmd = redis["command"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--appendfsync") + 1] == "everysec"
    assert any(v["type"] == "volume" and v["target"] == "/data" for v in redis["volumes"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_sidecar(config: dict) -> None:
    sidecar = config["services"]["sidecar"]
    assert sidecar["build"]["dockerfile"] == "Dockerfile"
    assert Path(sidecar["build"]["context"]) == ROOT
    assert sidecar["depends_on"]["redis"]["condition"] == "service_healthy"
    env = sidecar["environment"]
    assert env["FRIDAY_REDIS_URL"] == "redis://redis:6379/0"
    assert env["FRIDAY_HTTP_HOST"] == "0.0.0.0"
    assert env["FRIDAY_GRPC_HOST"] == "0.0.0.0"
    # The shared key from the env file reaches the sidecar as its accepted key.
    assert env["FRIDAY_API_KEYS"] == "change-me-friday-api-key"
    assert "/readyz" in " ".join(sidecar["healthcheck"]["test"])
    assert {p["target"] for p in sidecar["ports"]} == {8000, 50051}


def test_n8n(config: dict) -> None:
    n8n = config["services"]["n8n"]
    assert n8n["build"]["dockerfile"] == "deploy/n8n/Dockerfile"
    assert n8n["depends_on"]["sidecar"]["condition"] == "service_healthy"
    assert any(v["type"] == "volume" and v["target"] == "/home/node/.n8n" for v in n8n["volumes"])
    assert "/healthz" in " ".join(n8n["healthcheck"]["test"])
    assert [p["target"] for p in n8n["ports"]] == [5678]
    env = n8n["environment"]
    assert env["FRIDAY_API_KEY"] == config["services"]["sidecar"]["environment"]["FRIDAY_API_KEYS"]
    assert env["N8N_ENCRYPTION_KEY"]
    assert env["DB_TYPE"] == "sqlite"


def _ro_binds(service: dict) -> dict[str, Path]:
    """target -> source of the service's read-only bind mounts."""
    return {v["target"]: Path(v["source"]) for v in service["volumes"] if v["type"] == "bind" and v.get("read_only")}


def _pinned(image: str, repo: str) -> None:
    name, _, tag = image.partition(":")
    assert name == repo and tag and tag != "latest" and any(c.isdigit() for c in tag), image


def test_prometheus(config: dict) -> None:
    """Runs deploy/prometheus/prometheus.yml (the file tests/test_prometheus_real.py runs) with alerts.yml, the
    sidecar's key as a secret file where the config reads it, scraping the sidecar service."""
    prom = config["services"]["prometheus"]
    _pinned(prom["image"], "prom/prometheus")
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    binds = _ro_binds(prom)
    assert binds["/etc/prometheus/prometheus.yml"] == ROOT / "deploy" / "prometheus" / "prometheus.yml"
    shipped = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [rule_file] = shipped["rule_files"]
    assert binds[rule_file] == ROOT / "deploy" / "prometheus" / "alerts.yml"
    [job] = shipped["scrape_configs"]
    [secret] = prom["secrets"]
    assert "/run/secrets/" + secret["target"] == job["authorization"]["credentials_file"]
    assert config["secrets"][secret["source"]]["environment"] == "FRIDAY_API_KEY"  # the key the sidecar accepts
    host, port = job["static_configs"][0]["targets"][0].split(":")
    assert host == "sidecar" and int(port) in {p["target"] for p in config["services"]["sidecar"]["ports"]}
    assert prom["depends_on"]["sidecar"]["condition"] == "service_healthy"
    assert any(v["type"] == "volume" and v["target"] == "/prometheus" for v in prom["volumes"])
    assert [(p["host_ip"], p["target"]) for p in prom["ports"]] == [("127.0.0.1", 9090)]
    assert "/-/ready" in " ".join(prom["healthcheck"]["test"])


def test_grafana(config: dict) -> None:
    """Provisioned read-only with the Prometheus datasource and the dashboard of deploy/grafana/."""
    graf = config["services"]["grafana"]
    _pinned(graf["image"], "grafana/grafana")
    binds = _ro_binds(graf)
    grafana = ROOT / "deploy" / "grafana"
    assert binds["/etc/grafana/provisioning"] == grafana / "provisioning"
    [provider] = yaml.safe_load((grafana / "provisioning" / "dashboards" / "friday.yml").read_text())["providers"]
    assert binds[provider["options"]["path"]] == grafana / "dashboards"
    assert (grafana / "dashboards" / "friday.json").is_file()
    assert graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == provider["options"]["path"] + "/friday.json"
    [ds] = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    dashboard = json.loads((grafana / "dashboards" / "friday.json").read_text())
    [var] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert var["current"]["value"] == ds["uid"]
    for panel in dashboard["panels"]:
        for ref in [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]:
            assert ref in (None, {"type": "prometheus", "uid": "${datasource}"}, {"type": "prometheus", "uid": ds["uid"]}), panel["title"]
    assert graf["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "change-me-grafana-admin-password"  # from .env.example
    assert graf["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert any(v["type"] == "volume" and v["target"] == "/var/lib/grafana" for v in graf["volumes"])
    assert [(p["host_ip"], p["target"]) for p in graf["ports"]] == [("127.0.0.1", 3000)]


def test_named_volumes(config: dict) -> None:
    assert {"redis-data", "n8n-data", "prometheus-data", "grafana-data"} <= set(config["volumes"])


def test_env_example_documents_shared_key() -> None:
    text = (ROOT / ".env.example").read_text()
    assert "FRIDAY_API_KEY=" in text
    assert "FRIDAY_API_KEYS" in text


def test_dockerfiles() -> None:
    sidecar = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.12-slim" in sidecar
    assert 'CMD ["friday", "serve"]' in sidecar
    assert "USER friday" in sidecar
    assert "EXPOSE 8000 50051" in sidecar
    # the image builds and installs both distributions: the client (which the sidecar imports) and the sidecar
    assert "pip wheel --no-deps --wheel-dir /wheels ./clients/python ." in sidecar
    assert 'pip install /wheels/friday_bus_client-*.whl "$(echo /wheels/friday_eventbus-*.whl)[otel]"' in sidecar
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()]
    assert not {"clients", "clients/python", "clients/*", "clients/python/friday_bus_client", "**/clients"} & set(ignored)
    n8n = (ROOT / "deploy" / "n8n" / "Dockerfile").read_text()
    assert "ARG N8N_VERSION=2.40.7" in n8n and "FROM n8nio/n8n:${N8N_VERSION}" in n8n
    assert "/home/node/.n8n/nodes/node_modules/n8n-nodes-friday" in n8n
