"""Proves the n8n harness against the real n8n from scripts/n8n/install.sh.

One n8n instance for the module (starting one costs ~15 s and ~800 MB); the tests run
in file order and build on each other: package install + CLI imports before start,
owner + API key, publish/call/unpublish, SIGTERM restart, SIGKILL restart.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
from n8n_harness import (
    INSTALL_HINT,
    N8nError,
    N8nInstall,
    N8nInstance,
    N8nNotInstalled,
    pack_directory,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROBE_TYPE = "n8n-nodes-harness-probe.harnessProbe"
TRIGGER_TYPE = "n8n-nodes-harness-probe.harnessProbeTrigger"
CRED_ID = "FridayE2eCred001"
IMPORTED_WF_ID = "FridayE2eWf00001"
HEADER_NAME = "X-Friday-E2e"
HEADER_VALUE = "s3cret-header-value"


def webhook_workflow(name: str, path: str, *, auth: bool = False, wf_id: str | None = None) -> dict:
    """Webhook (POST /webhook/<path>) -> Harness Probe node from the fixture package."""
    webhook = {
        "id": f"{path}-hook",
        "name": "Webhook",
        "type": "n8n-nodes-base.webhook",
        "typeVersion": 2,
        "position": [0, 0],
        "webhookId": f"{path}-webhook-id",
        "parameters": {"httpMethod": "POST", "path": path, "responseMode": "onReceived"},
    }
    if auth:
        webhook["parameters"]["authentication"] = "headerAuth"
        webhook["credentials"] = {"httpHeaderAuth": {"id": CRED_ID, "name": "E2E header auth"}}
    wf = {
        "name": name,
        "nodes": [
            webhook,
            {
                "id": f"{path}-probe",
                "name": "Probe",
                "type": PROBE_TYPE,
                "typeVersion": 1,
                "position": [220, 0],
                "parameters": {"tag": path},
            },
        ],
        "connections": {"Webhook": {"main": [[{"node": "Probe", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"},
    }
    if wf_id:
        wf.update({"id": wf_id, "active": False})
    return wf


def trigger_workflow(name: str, *, marker: Path, fail: bool = False, interval_ms: int = 700) -> dict:
    """Harness Probe Trigger (emits every interval_ms) -> Harness Probe."""
    return {
        "name": name,
        "nodes": [
            {
                "id": "probe-trigger",
                "name": "Trigger",
                "type": TRIGGER_TYPE,
                "typeVersion": 1,
                "position": [0, 0],
                "parameters": {"intervalMs": interval_ms, "fail": fail, "markerFile": str(marker)},
            },
            {
                "id": "probe-node",
                "name": "Probe",
                "type": PROBE_TYPE,
                "typeVersion": 1,
                "position": [220, 0],
                "parameters": {"tag": "from-trigger"},
            },
        ],
        "connections": {"Trigger": {"main": [[{"node": "Probe", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"},
    }


def probe_output(execution: dict) -> list[dict]:
    run_data = execution["data"]["resultData"]["runData"]
    return [item["json"] for item in run_data["Probe"][0]["data"]["main"][0]]


def test_missing_install_fails_with_hint(tmp_path: Path) -> None:
    with pytest.raises(N8nNotInstalled, match="scripts/n8n/install.sh"):
        N8nInstall.find(version="0.0.0-missing", cache_dir=tmp_path)
    assert "scripts/n8n/install.sh" in INSTALL_HINT


@pytest.fixture(scope="module")
def n8n(n8n_install: N8nInstall, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("n8n-user")
    inst = N8nInstance(n8n_install, folder)
    try:
        tgz = pack_directory(FIXTURES / "n8n-nodes-harness-probe", tmp_path_factory.mktemp("pkg"))
        dest = inst.install_package_tarball(tgz)
        assert (dest / "package.json").is_file()
        # CLI imports before the first start (the first CLI call also runs the migrations).
        inst.import_credentials(
            [
                {
                    "id": CRED_ID,
                    "name": "E2E header auth",
                    "type": "httpHeaderAuth",
                    "data": {"name": HEADER_NAME, "value": HEADER_VALUE},
                }
            ]
        )
        inst.import_workflows([webhook_workflow("imported header-auth webhook", "imported", auth=True, wf_id=IMPORTED_WF_ID)])
        t0 = time.monotonic()
        inst.start()
        print(f"n8n {n8n_install.version} ready in {time.monotonic() - t0:.1f}s on {inst.base_url}")
        yield inst
    finally:
        inst.close()
    assert not inst.running


def call_webhook(inst: N8nInstance, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    return httpx.post(f"{inst.webhook_url}/{path}", json=body, headers=headers or {}, timeout=30)


@pytest.mark.n8n
def test_owner_and_api_key(n8n: N8nInstance) -> None:
    owner = n8n.setup_owner()
    assert owner["email"] == "owner@friday.test"
    scopes = n8n.api_key_scopes()
    assert "workflow:publish" in scopes or "workflow:activate" in scopes, scopes
    key = n8n.create_api_key()
    assert key
    # The unpacked fixture package is loaded, its node types prefixed by the package name.
    loaded = n8n.node_types(PROBE_TYPE, TRIGGER_TYPE)
    assert sorted(d["displayName"] for d in loaded) == ["Harness Probe", "Harness Probe Trigger"]
    with pytest.raises(N8nError, match="Unrecognized node type"):
        n8n.node_types("n8n-nodes-harness-probe.noSuchNode")
    workflows = n8n.api.get("/workflows").json()["data"]
    assert [w["id"] for w in workflows] == [IMPORTED_WF_ID]


@pytest.mark.n8n
def test_imported_workflow_with_imported_credential(n8n: N8nInstance) -> None:
    n8n.publish(IMPORTED_WF_ID)
    assert IMPORTED_WF_ID in n8n.active_workflow_ids()
    # Header auth comes from the CLI-imported (encrypted-on-import) credential.
    assert call_webhook(n8n, "imported", {"n": 0}).status_code == 403
    resp = call_webhook(n8n, "imported", {"n": 1}, {HEADER_NAME: HEADER_VALUE})
    assert resp.status_code == 200, resp.text
    (execution,) = n8n.wait_for_executions(IMPORTED_WF_ID, 1)
    assert execution["status"] == "success"
    assert execution["mode"] == "webhook"
    full = n8n.get_execution(execution["id"])
    (out,) = probe_output(full)
    assert out["probe"] == "imported"
    assert out["body"] == {"n": 1}


@pytest.mark.n8n
def test_public_api_workflow_publish_unpublish(n8n: N8nInstance) -> None:
    wf = n8n.create_workflow(webhook_workflow("api webhook", "viaapi"))
    assert wf["active"] is False
    n8n.publish(wf["id"])
    assert n8n.get_workflow(wf["id"])["active"] is True
    for i in range(3):
        assert call_webhook(n8n, "viaapi", {"i": i}).status_code == 200
    execs = n8n.wait_for_executions(wf["id"], 3)
    assert {e["status"] for e in execs} == {"success"}
    assert all(e["workflowId"] == wf["id"] for e in execs)
    assert n8n.list_executions(wf["id"], status="error") == []

    n8n.unpublish(wf["id"])
    assert n8n.get_workflow(wf["id"])["active"] is False
    assert call_webhook(n8n, "viaapi", {"i": 99}).status_code == 404
    # Publishing a workflow whose trigger cannot activate is reported by publish().
    broken = webhook_workflow("broken", "viaapi")
    broken["nodes"][0]["parameters"]["path"] = "imported"  # path taken by the imported workflow
    broken_wf = n8n.create_workflow(broken)
    with pytest.raises(N8nError, match="HTTP 4"):
        n8n.publish(broken_wf["id"])
    n8n.delete_workflow(broken_wf["id"])


@pytest.mark.n8n
def test_trigger_activation_error_is_reported(n8n: N8nInstance, tmp_path: Path) -> None:
    wf = n8n.create_workflow(trigger_workflow("failing trigger", marker=tmp_path / "m", fail=True))
    # trigger() throwing surfaces through the publication status (publish() raises).
    with pytest.raises(N8nError, match="probe trigger asked to fail"):
        n8n.publish(wf["id"])
    status = n8n.publication_status(wf["id"])
    assert status["status"] == "failed"
    assert "probe trigger asked to fail" in status["triggers"][0]["errorMessage"]
    assert n8n.list_executions(wf["id"]) == []
    n8n.unpublish(wf["id"])


TRIGGER_STATE: dict = {}


@pytest.mark.n8n
def test_trigger_runs_and_unpublish_calls_close(n8n: N8nInstance, tmp_path_factory) -> None:
    marker = tmp_path_factory.mktemp("marker") / "trigger.log"
    wf = n8n.create_workflow(trigger_workflow("periodic trigger", marker=marker))
    n8n.publish(wf["id"])
    assert marker.read_text() == "started trigger\n"
    execs = n8n.wait_for_executions(wf["id"], 2, include_data=True)
    assert {e["mode"] for e in execs} == {"trigger"}
    assert all(e["status"] == "success" for e in execs)
    assert probe_output(execs[0])[0]["probe"] == "from-trigger"

    n8n.unpublish(wf["id"])
    assert marker.read_text() == "started trigger\nclosed trigger\n"
    # No more runs once unpublished (allow one that was already in flight).
    count = len(n8n.wait_for_executions(wf["id"], 1, finished=False))
    time.sleep(2)
    assert len(n8n.list_executions(wf["id"])) <= count + 1
    # Published again: kept live across the restarts below.
    n8n.publish(wf["id"])
    TRIGGER_STATE.update(id=wf["id"], marker=marker)


@pytest.mark.n8n
def test_sigterm_restart_keeps_state(n8n: N8nInstance) -> None:
    code = n8n.stop()
    assert code == 0, n8n.log_tail()
    assert not n8n.running
    # Graceful stop ran the trigger's closeFunction.
    assert TRIGGER_STATE["marker"].read_text().splitlines()[-1] == "closed trigger"
    n8n.start()
    n8n.login()
    # Still published after a restart, credential still decrypts with the fixed key.
    assert IMPORTED_WF_ID in n8n.active_workflow_ids()
    assert n8n.activation_error(IMPORTED_WF_ID) is None
    n8n.wait_published(IMPORTED_WF_ID)
    n8n.wait_published(TRIGGER_STATE["id"])
    assert TRIGGER_STATE["marker"].read_text().splitlines()[-1] == "started trigger"
    resp = call_webhook(n8n, "imported", {"n": 2}, {HEADER_NAME: HEADER_VALUE})
    assert resp.status_code == 200, resp.text
    n8n.wait_for_executions(IMPORTED_WF_ID, 2)


@pytest.mark.n8n
def test_sigkill_restart(n8n: N8nInstance) -> None:
    pid = n8n.proc.pid
    n8n.kill()
    assert not n8n.running
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole group (task runner included) is gone
    n8n.restart()
    resp = call_webhook(n8n, "imported", {"n": 3}, {HEADER_NAME: HEADER_VALUE})
    assert resp.status_code == 200, resp.text
    execs = n8n.wait_for_executions(IMPORTED_WF_ID, 3)
    assert [e["status"] for e in execs] == ["success"] * 3
    # SIGKILL: no closeFunction ran ("started" twice in a row), trigger live again after restart.
    lines = TRIGGER_STATE["marker"].read_text().splitlines()
    assert lines[-2:] == ["started trigger", "started trigger"], lines
    before = len(n8n.list_executions(TRIGGER_STATE["id"]))
    n8n.wait_for_executions(TRIGGER_STATE["id"], before + 1)
    n8n.unpublish(TRIGGER_STATE["id"])
