"""Helpers for driving the n8n-nodes-friday package in a real n8n against a real sidecar.

Shared by tests/e2e_n8n/test_friday_nodes.py and bench/n8n_latency.py:

* ``build_package_tarball(dest)``: copies n8n-nodes-friday's sources (not its dist/), builds
  them with the package's own toolchain (``npm run build``) and packs them (``npm pack``),
  so what n8n loads is exactly what would be published, from the current sources;
* ``friday_credential(...)``: the "Friday API" credential as `n8n import:credentials` takes it;
* node and workflow builders (Friday Trigger, Friday node, Code, Wait, IF, Stop and Error);
* ``SidecarAdmin``: the few sidecar HTTP calls the tests check outcomes with.

Standard library and httpx only (no pytest), so the benchmark can use it too.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "n8n-nodes-friday"
PACKAGE_NAME = "n8n-nodes-friday"
TRIGGER_TYPE = f"{PACKAGE_NAME}.fridayTrigger"
FRIDAY_TYPE = f"{PACKAGE_NAME}.friday"
CREDENTIAL_TYPE = "fridayApi"
CREDENTIAL_ID = "FridayApiCred0001"
CREDENTIAL_NAME = "Friday sidecar (e2e)"
MAKE_HINT = "run `make test` (it installs the package's node_modules, n8n and the browser tooling first)"


class PackageBuildError(RuntimeError):
    """The package could not be built or packed (message carries npm's output)."""


# ---------------------------------------------------------------------------- package
def _copy_sources(src: Path, dest: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        if Path(directory) == src:
            return {n for n in names if n in {"node_modules", "dist", ".git"} or n.endswith(".tgz")}
        return set()

    shutil.copytree(src, dest, ignore=ignore, symlinks=True)


def _npm(args: Sequence[str], cwd: Path, timeout: float = 300) -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise PackageBuildError(f"npm is not installed; {MAKE_HINT}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "NODE_OPTIONS"))}
    env.update({"npm_config_yes": "true", "npm_config_update_notifier": "false", "CI": "1", "NO_COLOR": "1"})
    proc = subprocess.run(  # noqa: PLW1510 - checked below with the output in the message
        [npm, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise PackageBuildError(f"`npm {' '.join(args)}` failed in {cwd} (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def build_package_tarball(dest: Path, package_dir: Path = PACKAGE_DIR) -> Path:
    """Build and `npm pack` the package from a copy of its sources; returns the .tgz path.

    The package's own node_modules (installed by `make test`) is linked into the copy, so
    the working folder of the package is never touched (no dist/ written there)."""
    modules = package_dir / "node_modules"
    if not (modules / ".bin" / "n8n-node").exists():
        raise PackageBuildError(f"{modules} has no @n8n/node-cli (n8n-node); {MAKE_HINT}")
    dest.mkdir(parents=True, exist_ok=True)
    work = dest / "src"
    if work.exists():
        shutil.rmtree(work)
    _copy_sources(package_dir, work)
    (work / "node_modules").symlink_to(modules.resolve(), target_is_directory=True)
    _npm(["run", "build"], work)
    out = _npm(["pack", "--json", "--pack-destination", str(dest)], work)
    try:
        filename = json.loads(out)[0]["filename"]
    except (ValueError, LookupError) as exc:
        raise PackageBuildError(f"cannot read `npm pack --json` output: {out[-2000:]}") from exc
    tarball = dest / Path(filename).name
    if not tarball.is_file():
        raise PackageBuildError(f"npm pack did not write {tarball}")
    return tarball


def tarball_members(tarball: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        return sorted(m.name for m in tar.getmembers())


def friday_credential(base_url: str, api_key: str | None) -> dict[str, Any]:
    """The Friday API credential, as `n8n import:credentials` takes it (data encrypted on import)."""
    return {
        "id": CREDENTIAL_ID,
        "name": CREDENTIAL_NAME,
        "type": CREDENTIAL_TYPE,
        "data": {"baseUrl": base_url, "apiKey": api_key or ""},
    }


# ---------------------------------------------------------------------------- nodes
CRED_REF = {CREDENTIAL_TYPE: {"id": CREDENTIAL_ID, "name": CREDENTIAL_NAME}}


def _node(name: str, type_: str, version: float, parameters: Mapping[str, Any], position: Sequence[int], **extra: Any) -> dict:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"friday-e2e/{name}/{type_}")),
        "name": name,
        "type": type_,
        "typeVersion": version,
        "position": list(position),
        "parameters": dict(parameters),
        **extra,
    }


def friday_trigger(
    name: str = "Friday Trigger",
    *,
    stream: str | None = None,
    group: str | None = None,
    channel: str | None = None,
    ack_mode: str = "executionFinishesSuccessfully",
    position: Sequence[int] = (0, 0),
    **options: Any,
) -> dict:
    """Friday Trigger on a critical stream (stream + group) or an informational channel.
    ``options``: blockMs, output, parallelExecutions, closeTimeout."""
    if channel is not None:
        params: dict[str, Any] = {"source": "channel", "channel": channel}
    else:
        assert stream and group, "a stream trigger needs stream and group"
        params = {"source": "stream", "stream": stream, "group": group, "ackMode": ack_mode}
    if options:
        params["options"] = options
    return _node(name, TRIGGER_TYPE, 1, params, position, credentials=CRED_REF)


def friday_publish(name: str, stream: str, payload_expression: str, *, position: Sequence[int] = (220, 0), **options: Any) -> dict:
    """Friday node, Publish Event with a JSON payload built by an expression (``={{ {...} }}``)."""
    params: dict[str, Any] = {"operation": "publish", "stream": stream, "payloadSource": "json", "payloadJson": payload_expression}
    if options:
        params["publishOptions"] = options
    return _node(name, FRIDAY_TYPE, 1, params, position, credentials=CRED_REF)


def friday_ack(name: str, *, trigger: str = "Friday Trigger", position: Sequence[int] = (440, 0)) -> dict:
    """Friday node, Acknowledge Event, reading the delivery from the trigger's item (not $json,
    which may come from an intermediate node)."""
    ref = f"$('{trigger}').item.json._friday"
    params = {
        "operation": "acknowledge",
        "ackStream": f"={{{{ {ref}.stream }}}}",
        "ackGroup": f"={{{{ {ref}.group }}}}",
        "ackId": f"={{{{ {ref}.id }}}}",
    }
    return _node(name, FRIDAY_TYPE, 1, params, position, credentials=CRED_REF)


def friday_reject(name: str, reason: str, *, trigger: str = "Friday Trigger", position: Sequence[int] = (440, 0)) -> dict:
    ref = f"$('{trigger}').item.json._friday"
    params = {
        "operation": "reject",
        "ackStream": f"={{{{ {ref}.stream }}}}",
        "ackGroup": f"={{{{ {ref}.group }}}}",
        "ackId": f"={{{{ {ref}.id }}}}",
        "reason": reason,
    }
    return _node(name, FRIDAY_TYPE, 1, params, position, credentials=CRED_REF)


def friday_status(name: str, stream: str, *, position: Sequence[int] = (220, 0)) -> dict:
    return _node(name, FRIDAY_TYPE, 1, {"operation": "getStreamStatus", "statusStream": stream}, position, credentials=CRED_REF)


def code_node(name: str, js: str, *, position: Sequence[int] = (220, 0)) -> dict:
    return _node(name, "n8n-nodes-base.code", 2, {"mode": "runOnceForAllItems", "language": "javaScript", "jsCode": js}, position)


def wait_node(name: str, seconds: int, *, position: Sequence[int] = (220, 0)) -> dict:
    """Wait node (< 65 s waits stay in memory in the running execution)."""
    return _node(
        name, "n8n-nodes-base.wait", 1.1, {"resume": "timeInterval", "amount": seconds, "unit": "seconds"}, position,
        webhookId=str(uuid.uuid5(uuid.NAMESPACE_URL, f"friday-e2e/wait/{name}")),
    )


def stop_and_error(name: str, message: str, *, position: Sequence[int] = (220, 0)) -> dict:
    return _node(name, "n8n-nodes-base.stopAndError", 1, {"errorType": "errorMessage", "errorMessage": message}, position)


def noop(name: str, *, position: Sequence[int] = (440, 0)) -> dict:
    return _node(name, "n8n-nodes-base.noOp", 1, {}, position)


def if_node(name: str, left_expression: str, operator: Mapping[str, Any], right: Any = "", *, position: Sequence[int] = (220, 0)) -> dict:
    """IF node (v2) with one condition; output 0 = true, 1 = false."""
    params = {
        "conditions": {
            "options": {"caseSensitive": True, "leftValue": "", "typeValidation": "loose"},
            "conditions": [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"friday-e2e/if/{name}")),
                    "leftValue": left_expression,
                    "rightValue": right,
                    "operator": dict(operator),
                }
            ],
            "combinator": "and",
        },
        "options": {},
    }
    return _node(name, "n8n-nodes-base.if", 2, params, position)


def if_number_lt(name: str, left_expression: str, right: float, *, position: Sequence[int] = (220, 0)) -> dict:
    """IF node: true output when ``left < right``."""
    return if_node(name, left_expression, {"type": "number", "operation": "lt"}, right, position=position)


def if_true(name: str, left_expression: str, *, position: Sequence[int] = (220, 0)) -> dict:
    """IF node: true output when the expression is true."""
    return if_node(name, left_expression, {"type": "boolean", "operation": "true", "singleValue": True}, position=position)


def workflow(name: str, nodes: Sequence[dict], edges: Sequence[tuple[str, str] | tuple[str, str, int]]) -> dict:
    """A workflow from nodes and edges (source, target[, source output index])."""
    connections: dict[str, dict[str, list[list[dict]]]] = {}
    for edge in edges:
        source, target = edge[0], edge[1]
        index = edge[2] if len(edge) > 2 else 0  # type: ignore[misc]
        outputs = connections.setdefault(source, {"main": []})["main"]
        while len(outputs) <= index:
            outputs.append([])
        outputs[index].append({"node": target, "type": "main", "index": 0})
    return {"name": name, "nodes": list(nodes), "connections": connections, "settings": {"executionOrder": "v1"}}


def chain(name: str, nodes: Sequence[dict]) -> dict:
    """A straight line of nodes."""
    return workflow(name, nodes, [(a["name"], b["name"]) for a, b in itertools.pairwise(nodes)])


# ---------------------------------------------------------------------------- executions
def node_output(execution: Mapping[str, Any], node: str, output: int = 0, run: int = 0) -> list[dict]:
    """Items (their json) a node produced in an execution fetched with includeData=true."""
    run_data = execution["data"]["resultData"]["runData"]
    if node not in run_data:
        return []
    main = run_data[node][run]["data"]["main"]
    if len(main) <= output or main[output] is None:
        return []
    return [item["json"] for item in main[output]]


def execution_error(execution: Mapping[str, Any]) -> str | None:
    error = execution.get("data", {}).get("resultData", {}).get("error")
    return None if error is None else error.get("message")


# ---------------------------------------------------------------------------- sidecar
class SidecarAdmin:
    """The sidecar HTTP calls the tests use to check outcomes."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float = 40.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _ok(self, resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            raise RuntimeError(f"{resp.request.method} {resp.request.url.path}: HTTP {resp.status_code} {resp.text[:500]}")
        return resp.json()

    def create_group(self, stream: str, group: str, start: str = "new") -> bool:
        return self._ok(self.http.post(f"/api/v1/streams/{stream}/groups", json={"group": group, "start": start}))["created"]

    def publish(self, stream: str, payload: Mapping[str, Any], **extra: Any) -> dict:
        return self._ok(self.http.post("/api/v1/events/publish", json={"stream": stream, "payload": dict(payload), **extra}))

    def stream_status(self, stream: str) -> dict:
        return self._ok(self.http.get(f"/api/v1/streams/{stream}/status"))

    def group_status(self, stream: str, group: str) -> dict:
        for g in self.stream_status(stream)["groups"]:
            if g["name"] == group:
                return g
        raise AssertionError(f"group {group} not found on {stream}")

    def read(self, stream: str, group: str, consumer: str, count: int = 100, block_ms: int = 0) -> list[dict]:
        body = {"consumer": consumer, "count": count, "block_ms": block_ms}
        return self._ok(self.http.post(f"/api/v1/streams/{stream}/groups/{group}/read", json=body))["deliveries"]

    def ack(self, stream: str, group: str, ids: Sequence[str]) -> int:
        return self._ok(self.http.post(f"/api/v1/streams/{stream}/groups/{group}/ack", json={"ids": list(ids)}))["acked"]

    def dlq(self, stream: str, count: int = 100) -> list[dict]:
        return self._ok(self.http.get(f"/api/v1/streams/{stream}/dlq", params={"count": count}))["entries"]

    def streams(self) -> list[str]:
        return [s["name"] for s in self._ok(self.http.get("/api/v1/streams"))["streams"]]


def poll(what: str, check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25, describe: Callable[[], str] | None = None) -> Any:
    """Call ``check`` until it returns a truthy value (returned), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            extra = f"\n{describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){extra}")
        time.sleep(interval)
