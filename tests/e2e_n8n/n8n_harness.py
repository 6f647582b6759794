"""Start and drive a real n8n (installed by scripts/n8n/install.sh) for end-to-end tests.

Only the standard library and httpx. Typical use::

    install = N8nInstall.find()                  # raises N8nNotInstalled if missing
    with N8nInstance(install, tmp_path / "n8n") as n8n:
        n8n.install_package_tarball(tgz)         # n8n-nodes-friday-x.y.z.tgz from `npm pack`
        n8n.import_credentials([...])            # CLI, before start (optional)
        n8n.start()                              # waits for /healthz/readiness + REST
        n8n.setup_owner(); n8n.create_api_key()  # public API key -> n8n.api
        wf = n8n.create_workflow({...}); n8n.publish(wf["id"])
        n8n.wait_for_executions(wf["id"], count=1)
        n8n.stop()                               # SIGTERM; or n8n.kill() (SIGKILL)
        n8n.start()                              # same user folder, same DB, same key

The instance always kills its process group on close()/exit/interpreter exit.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

DEFAULT_N8N_VERSION = "2.40.7"
# Fixed so credentials imported or created in one run decrypt in the next (restart tests).
DEFAULT_ENCRYPTION_KEY = "friday-e2e-fixed-n8n-encryption-key"
DEFAULT_OWNER = {
    "email": "owner@friday.test",
    "firstName": "Friday",
    "lastName": "Owner",
    "password": "FridayE2e-Passw0rd",
}
REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run `scripts/n8n/install.sh` (installs n8n + Node 24 into ~/.cache/friday)"

# Env vars that keep n8n quiet and local (see shared notes on n8n).
QUIET_ENV = {
    "DB_TYPE": "sqlite",
    "N8N_DIAGNOSTICS_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_TEMPLATES_ENABLED": "false",
    "N8N_PERSONALIZATION_ENABLED": "false",
    "N8N_HIRING_BANNER_ENABLED": "false",
    "N8N_DYNAMIC_BANNERS_ENABLED": "false",
    "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
    "N8N_SECURE_COOKIE": "false",
    "N8N_LISTEN_ADDRESS": "127.0.0.1",
    "N8N_PROTOCOL": "http",
    "N8N_HOST": "127.0.0.1",
    "GENERIC_TIMEZONE": "UTC",
    "TZ": "UTC",
    "N8N_LOG_OUTPUT": "console",
    "N8N_LOG_LEVEL": "info",
    "NODE_ENV": "production",
    # No npm look-ups for community packages at runtime; we unpack them ourselves.
    "N8N_COMMUNITY_PACKAGES_PREVENT_LOADING": "false",
    "N8N_UNVERIFIED_PACKAGES_ENABLED": "true",
    "N8N_PUBLIC_API_DISABLED": "false",
    "N8N_PUBLIC_API_SWAGGERUI_DISABLED": "true",
    # The mcp-registry module polls api.n8n.io (unreachable here): a log full of DNS errors.
    "N8N_DISABLED_MODULES": "mcp-registry",
    # A sidecar on loopback must be reachable even if SSRF protection gets enabled.
    "N8N_SSRF_ALLOWED_IP_RANGES": "127.0.0.1/32",
    "EXECUTIONS_DATA_SAVE_ON_ERROR": "all",
    "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "all",
    "EXECUTIONS_DATA_SAVE_MANUAL_EXECUTIONS": "true",
}
# Inherited variables that would change n8n's behaviour if they leaked in.
_STRIP_ENV_PREFIXES = ("N8N_", "DB_", "EXECUTIONS_", "QUEUE_", "WEBHOOK_URL", "NODE_OPTIONS")


class N8nNotInstalled(RuntimeError):
    """The cached n8n install is missing or incomplete."""


class N8nError(RuntimeError):
    """n8n failed to start, died, or an API call failed; message includes the log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on loopback (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _free_ports(count: int) -> list[int]:
    """Distinct free ports (sockets held open together so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class N8nInstall:
    """Paths of a completed `scripts/n8n/install.sh` install."""

    home: Path
    n8n_bin: Path
    node_bin: Path
    version: str

    @property
    def node_dir(self) -> Path:
        return self.node_bin.parent

    @classmethod
    def find(cls, version: str | None = None, cache_dir: str | os.PathLike | None = None) -> N8nInstall:
        """Locate the install; honours FRIDAY_N8N_HOME, FRIDAY_CACHE_DIR and N8N_VERSION."""
        version = version or os.environ.get("N8N_VERSION") or DEFAULT_N8N_VERSION
        if os.environ.get("FRIDAY_N8N_HOME") and cache_dir is None:
            home = Path(os.environ["FRIDAY_N8N_HOME"])
        else:
            root = Path(cache_dir or os.environ.get("FRIDAY_CACHE_DIR") or Path.home() / ".cache" / "friday")
            home = root / f"n8n-{version}"
        n8n_bin = home / "app" / "node_modules" / ".bin" / "n8n"
        node_bin = home / "node" / "bin" / "node"
        missing = [str(p) for p in (home / ".complete", n8n_bin, node_bin) if not p.exists()]
        if missing:
            raise N8nNotInstalled(f"n8n {version} is not installed (missing: {', '.join(missing)}); {INSTALL_HINT}")
        return cls(home=home, n8n_bin=n8n_bin, node_bin=node_bin, version=version)


def pack_directory(package_dir: Path, dest_dir: Path) -> Path:
    """Make an npm-pack-like tarball (`package/...`) of an already built package folder.

    For fixtures only; the real package is packed with `npm pack`.
    """
    manifest = json.loads((package_dir / "package.json").read_text())
    name = manifest["name"].replace("@", "").replace("/", "-")
    out = dest_dir / f"{name}-{manifest['version']}.tgz"
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(package_dir.rglob("*")):
            if "node_modules" in path.relative_to(package_dir).parts:
                continue
            tar.add(path, arcname=f"package/{path.relative_to(package_dir)}", recursive=False)
    return out


def _pdeathsig_prefix() -> list[str]:
    """`setpriv --pdeathsig KILL`: n8n gets SIGKILL if the test process dies (even by
    SIGKILL), so an aborted test run never leaves an n8n behind. The signal is tied to
    the thread that started n8n: start instances from a long-lived thread (pytest's)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


_LIVE: weakref.WeakSet[N8nInstance] = weakref.WeakSet()


@atexit.register
def _kill_all_at_exit() -> None:  # pragma: no cover - safety net
    for inst in list(_LIVE):
        inst.close()


class N8nInstance:
    """One n8n main process on loopback, with its own user folder and sqlite DB."""

    def __init__(
        self,
        install: N8nInstall,
        user_folder: str | os.PathLike,
        *,
        port: int | None = None,
        broker_port: int | None = None,
        encryption_key: str = DEFAULT_ENCRYPTION_KEY,
        env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike | None = None,
    ) -> None:
        self.install = install
        self.user_folder = Path(user_folder).resolve()
        self.user_folder.mkdir(parents=True, exist_ok=True)
        if port is None or broker_port is None:
            p1, p2 = _free_ports(2)
            port = port or p1
            broker_port = broker_port or p2
        assert port != broker_port, "n8n port and task broker port must differ"
        self.port = port
        self.broker_port = broker_port
        self.encryption_key = encryption_key
        self.extra_env = dict(env or {})
        self.log_path = Path(log_path) if log_path else self.user_folder / "n8n.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_key: str | None = None
        self.owner: dict[str, str] | None = None
        self._cookies = httpx.Cookies()
        self._api: httpx.Client | None = None
        self._rest: httpx.Client | None = None
        self._starts = 0
        _LIVE.add(self)

    # ------------------------------------------------------------------ paths / env
    @property
    def n8n_dir(self) -> Path:
        """n8n's state folder: `$N8N_USER_FOLDER/.n8n` (config, database.sqlite, nodes/)."""
        return self.user_folder / ".n8n"

    @property
    def nodes_dir(self) -> Path:
        return self.n8n_dir / "nodes"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/webhook"

    def env(self, *, broker_port: int | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIP_ENV_PREFIXES)}
        env.update(QUIET_ENV)
        env.update(
            {
                "PATH": f"{self.install.node_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
                "HOME": str(self.user_folder),
                "N8N_USER_FOLDER": str(self.user_folder),
                "N8N_PORT": str(self.port),
                "N8N_RUNNERS_BROKER_PORT": str(broker_port or self.broker_port),
                "N8N_ENCRYPTION_KEY": self.encryption_key,
                "N8N_WEBHOOK_URL": f"{self.base_url}/",
                "N8N_EDITOR_BASE_URL": f"{self.base_url}/",
            }
        )
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ logs
    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no n8n log yet)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _fail(self, message: str) -> N8nError:
        return N8nError(f"{message}\n--- n8n log tail ({self.log_path}) ---\n{self.log_tail()}")

    # ------------------------------------------------------------------ packages
    def install_package_tarball(self, tarball: str | os.PathLike) -> Path:
        """Unpack an `npm pack` tarball into `.n8n/nodes/node_modules/<name>`.

        This is the layout n8n's community-package installer produces, so node types
        are `<package name>.<node name>` (e.g. `n8n-nodes-friday.fridayTrigger`).
        Takes effect at the next start().
        """
        tarball = Path(tarball)
        with tempfile.TemporaryDirectory(dir=self.user_folder) as tmp:
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp, filter="data")
            entries = list(Path(tmp).iterdir())
            root = Path(tmp) / "package"
            if not root.is_dir():
                if len(entries) != 1 or not entries[0].is_dir():
                    raise ValueError(f"{tarball} is not an npm pack tarball")
                root = entries[0]
            manifest = json.loads((root / "package.json").read_text())
            name = manifest["name"]
            dest = self.nodes_dir / "node_modules" / name
            if dest.exists():
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(root), dest)
        # The installer keeps a package.json listing installed packages next to node_modules.
        pkg_json = self.nodes_dir / "package.json"
        data = json.loads(pkg_json.read_text()) if pkg_json.exists() else {"name": "installed-nodes", "private": True}
        data.setdefault("dependencies", {})[name] = manifest.get("version", "*")
        pkg_json.write_text(json.dumps(data, indent=2))
        return dest

    # ------------------------------------------------------------------ CLI
    def cli(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an `n8n` CLI command on this user folder (own free broker port)."""
        cmd = [str(self.install.n8n_bin), *args]
        proc = subprocess.run(  # noqa: PLW1510 - checked below, with the output in the message
            cmd,
            env=self.env(broker_port=free_port()),
            cwd=self.user_folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        with open(self.log_path, "a") as log:
            log.write(f"\n=== cli: n8n {' '.join(args)} (rc={proc.returncode}) ===\n{proc.stdout}{proc.stderr}")
        if check and proc.returncode != 0:
            raise N8nError(f"`n8n {' '.join(args)}` exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def _import(self, kind: str, items: Sequence[Mapping[str, Any]] | str | os.PathLike) -> None:
        if isinstance(items, (str, os.PathLike)):
            self.cli(f"import:{kind}", f"--input={Path(items).resolve()}")
            return
        fd, path = tempfile.mkstemp(prefix=f"import-{kind}-", suffix=".json", dir=self.user_folder)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(list(items), f)
            self.cli(f"import:{kind}", f"--input={path}")
        finally:
            os.unlink(path)

    def import_credentials(self, credentials: Sequence[Mapping[str, Any]] | str | os.PathLike) -> None:
        """CLI `import:credentials`. Each item: {id, name, type, data: {...plain...}}; data is
        encrypted on import with this instance's key. Use before start() (or restart after)."""
        self._import("credentials", credentials)

    def import_workflows(self, workflows: Sequence[Mapping[str, Any]] | str | os.PathLike) -> None:
        """CLI `import:workflow`. Items need at least name/nodes/connections; give an `id`
        to refer to them later. Imported workflows are inactive: publish() them."""
        self._import("workflow", workflows)

    # ------------------------------------------------------------------ process
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 120) -> N8nInstance:
        """`n8n start`; returns once /healthz/readiness and the REST API answer."""
        if self.running:
            raise RuntimeError("n8n is already running")
        self._starts += 1
        self.n8n_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start #{self._starts} port={self.port} broker={self.broker_port} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [*_pdeathsig_prefix(), str(self.install.n8n_bin), "start"],
                env=self.env(),
                cwd=self.user_folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: kill() reaches the task runner too
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
        ready = False
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise self._fail(f"n8n exited with code {code} before becoming ready")
                try:
                    if not ready:
                        ready = client.get("/healthz/readiness").status_code == 200
                    if ready and client.get("/rest/settings").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        raise self._fail(f"n8n not ready on {self.base_url} within {timeout:.0f}s")

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _group_alive(self) -> bool:
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover
            return True
        return True

    def _kill_group_and_wait(self, timeout: float = 10) -> None:
        """SIGKILL every process of n8n's group (main + task runner) and wait until
        the group is gone (orphaned children are reaped by init shortly after)."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
        deadline = time.monotonic() + timeout
        while self._group_alive() and time.monotonic() < deadline:
            self._signal_group(signal.SIGKILL)
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM to n8n (graceful: triggers' closeFunction runs), then wait.

        Escalates to SIGKILL of the whole process group after `timeout`.
        Returns the exit code of the main process (0 after a clean shutdown).
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        code = self.proc.poll()
        # The task runner exits with its parent; make sure nothing stays behind.
        self._kill_group_and_wait()
        self._reset_clients()
        return code if code is not None else self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the whole process group (a crash: no closeFunction, no cleanup)."""
        if self.proc is None:
            return None
        self._kill_group_and_wait()
        self._reset_clients()
        return self.proc.returncode

    def restart(self, timeout: float = 120, *, graceful: bool = True) -> N8nInstance:
        """stop() (or kill()) then start() on the same user folder; logs in again."""
        self.stop() if graceful else self.kill()
        self.start(timeout)
        if self.owner is not None:
            self.login()
        return self

    def close(self) -> None:
        """Kill whatever is left of this instance's processes (idempotent)."""
        if self.proc is not None:
            self._kill_group_and_wait()
        self._reset_clients()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP clients
    def _reset_clients(self) -> None:
        for c in (self._api, self._rest):
            if c is not None:
                c.close()
        self._api = self._rest = None

    @property
    def rest(self) -> httpx.Client:
        """Client for the internal REST API (`/rest/...`), carrying the owner's n8n-auth cookie."""
        if self._rest is None:
            self._rest = httpx.Client(
                base_url=f"{self.base_url}/rest",
                cookies=self._cookies,
                timeout=30,
                headers={"browser-id": "friday-e2e"},
            )
        return self._rest

    @property
    def api(self) -> httpx.Client:
        """Client for the public API (`/api/v1/...`) with the X-N8N-API-KEY header."""
        if self.api_key is None:
            raise RuntimeError("no API key yet: call setup_owner() and create_api_key()")
        if self._api is None:
            self._api = httpx.Client(
                base_url=f"{self.base_url}/api/v1",
                timeout=30,
                headers={"X-N8N-API-KEY": self.api_key, "accept": "application/json"},
            )
        return self._api

    def _check(self, resp: httpx.Response, what: str) -> Any:
        if resp.status_code >= 400:
            raise self._fail(f"{what}: HTTP {resp.status_code} {resp.text[:2000]}")
        if not resp.content:
            return None
        body = resp.json()
        return body

    # ------------------------------------------------------------------ owner / API key
    def setup_owner(self, owner: Mapping[str, str] | None = None) -> dict[str, Any]:
        """`POST /rest/owner/setup` on a fresh instance; keeps the n8n-auth cookie."""
        owner = dict(owner or DEFAULT_OWNER)
        resp = self.rest.post("/owner/setup", json=owner)
        data = self._check(resp, "owner setup")
        self._cookies.update(resp.cookies)
        self.owner = owner
        return data["data"]

    def login(self) -> None:
        """`POST /rest/login` as the owner (after a restart the cookie stays valid, but be safe)."""
        assert self.owner is not None
        resp = self.rest.post("/login", json={"emailOrLdapLoginId": self.owner["email"], "password": self.owner["password"]})
        self._check(resp, "login")
        self._cookies.update(resp.cookies)

    def node_types(self, *names: str, version: float = 1) -> list[dict[str, Any]]:
        """`POST /rest/node-types`: descriptions of the loaded node types asked for, e.g.
        `n8n-nodes-friday.fridayTrigger` (a community package's nodes carry its name).
        An unknown type is an HTTP 400 "Unrecognized node type" (N8nError)."""
        body = {"nodeInfos": [{"name": n, "version": version} for n in names]}
        return self._check(self.rest.post("/node-types", json=body), "node types")["data"]

    def api_key_scopes(self) -> list[str]:
        return self._check(self.rest.get("/api-keys/scopes"), "api key scopes")["data"]

    def create_api_key(self, label: str = "friday-e2e", scopes: Iterable[str] | None = None) -> str:
        """`POST /rest/api-keys` (all scopes the owner may grant by default); sets self.api_key."""
        scope_list = list(scopes) if scopes is not None else self.api_key_scopes()
        data = self._check(
            self.rest.post("/api-keys", json={"label": label, "scopes": scope_list, "expiresAt": None}),
            "create api key",
        )["data"]
        self.api_key = data["rawApiKey"]
        self._api = None
        return self.api_key

    # ------------------------------------------------------------------ public API
    def create_credential(self, name: str, type_: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return self._check(
            self.api.post("/credentials", json={"name": name, "type": type_, "data": dict(data)}),
            "create credential",
        )

    def create_workflow(self, workflow: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /api/v1/workflows`; only name/nodes/connections/settings are accepted."""
        body = {
            "name": workflow["name"],
            "nodes": workflow["nodes"],
            "connections": workflow.get("connections", {}),
            "settings": workflow.get("settings", {"executionOrder": "v1"}),
        }
        return self._check(self.api.post("/workflows", json=body), "create workflow")

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        return self._check(self.api.get(f"/workflows/{workflow_id}"), "get workflow")

    def update_workflow(self, workflow_id: str, workflow: Mapping[str, Any]) -> dict[str, Any]:
        body = {
            "name": workflow["name"],
            "nodes": workflow["nodes"],
            "connections": workflow.get("connections", {}),
            "settings": workflow.get("settings", {"executionOrder": "v1"}),
        }
        return self._check(self.api.put(f"/workflows/{workflow_id}", json=body), "update workflow")

    def delete_workflow(self, workflow_id: str) -> None:
        self._check(self.api.delete(f"/workflows/{workflow_id}"), "delete workflow")

    def publish(self, workflow_id: str, *, wait: bool = True, timeout: float = 60) -> dict[str, Any]:
        """`POST /api/v1/workflows/{id}/publish`, then wait until its triggers are live.

        n8n 2.40 publishes through an outbox: the API call returns before trigger()
        has run. With wait=True this polls the publication status until every
        trigger is activated, and raises N8nError carrying the triggers' error
        messages if one failed (e.g. trigger() threw). Synchronous checks
        (webhook path conflicts, invalid nodes) fail the POST itself (HTTP 400).
        """
        wf = self._check(self.api.post(f"/workflows/{workflow_id}/publish"), f"publish {workflow_id}")
        if wait:
            self.wait_published(workflow_id, version_id=wf.get("activeVersionId"), timeout=timeout)
        return wf

    def unpublish(self, workflow_id: str, *, wait: bool = True, timeout: float = 60) -> dict[str, Any]:
        """`POST /api/v1/workflows/{id}/unpublish`; with wait=True, returns once the
        triggers are torn down (the trigger's closeFunction has run)."""
        wf = self._check(self.api.post(f"/workflows/{workflow_id}/unpublish"), f"unpublish {workflow_id}")
        if wait:
            deadline = time.monotonic() + timeout
            while True:
                status = self.publication_status(workflow_id)
                if status["status"] == "not_published":
                    break
                if time.monotonic() > deadline:
                    raise self._fail(f"workflow {workflow_id} still {status} after {timeout:.0f}s")
                time.sleep(0.2)
        return wf

    def publication_status(self, workflow_id: str) -> dict[str, Any]:
        """`GET /rest/workflows/{id}/publication-status` (cookie):
        {status: not_published|in_progress|published|partial|failed, liveVersionId,
        pendingVersionId, triggers: [{nodeId, status: activated|failed, errorMessage}]}."""
        return self._check(self.rest.get(f"/workflows/{workflow_id}/publication-status"), "publication status")["data"]

    def wait_published(self, workflow_id: str, *, version_id: str | None = None, timeout: float = 60) -> dict[str, Any]:
        """Wait until the workflow's triggers are all activated (also after a restart)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.publication_status(workflow_id)
            settled = status["status"] in ("published", "partial", "failed")
            if settled and (version_id is None or status["liveVersionId"] == version_id or status["status"] != "published"):
                if status["status"] != "published":
                    errors = "; ".join(
                        f"{t['nodeId']}: {t['errorMessage']}" for t in status["triggers"] if t["status"] != "activated"
                    )
                    raise N8nError(f"workflow {workflow_id} publication {status['status']}: {errors}")
                return status
            if time.monotonic() > deadline:
                raise self._fail(f"workflow {workflow_id} not published after {timeout:.0f}s: {status}")
            time.sleep(0.2)

    def active_workflow_ids(self) -> list[str]:
        """`GET /rest/active-workflows` (cookie): ids n8n currently has active."""
        return self._check(self.rest.get("/active-workflows"), "active workflows")["data"]

    def activation_error(self, workflow_id: str) -> Any:
        """`GET /rest/active-workflows/error/{id}`: the last error n8n recorded while
        (re)activating this workflow's trigger (None if none). Use after a restart, where
        activation errors don't surface through any API call."""
        return self._check(self.rest.get(f"/active-workflows/error/{workflow_id}"), "activation error")["data"]

    def list_executions(
        self,
        workflow_id: str | None = None,
        *,
        status: str | None = None,
        include_data: bool = False,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """`GET /api/v1/executions`, newest first. Item fields: id, finished, mode,
        status (success|error|running|waiting|canceled|crashed|new), startedAt,
        stoppedAt, workflowId, retryOf, retrySuccessId, waitTill (+ data if include_data)."""
        params: dict[str, Any] = {"limit": limit, "includeData": str(include_data).lower()}
        if workflow_id is not None:
            params["workflowId"] = workflow_id
        if status is not None:
            params["status"] = status
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            if cursor:
                params["cursor"] = cursor
            page = self._check(self.api.get("/executions", params=params), "list executions")
            items.extend(page["data"])
            cursor = page.get("nextCursor")
            if not cursor or len(items) >= limit:
                return items

    def get_execution(self, execution_id: str | int, include_data: bool = True) -> dict[str, Any]:
        return self._check(
            self.api.get(f"/executions/{execution_id}", params={"includeData": str(include_data).lower()}),
            "get execution",
        )

    def wait_for_executions(
        self,
        workflow_id: str,
        count: int = 1,
        *,
        timeout: float = 60,
        finished: bool = True,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        include_data: bool = False,
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` executions of the workflow match (finished ones by default)."""
        deadline = time.monotonic() + timeout
        matched: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            if not self.running:
                raise self._fail("n8n died while waiting for executions")
            execs = self.list_executions(workflow_id, include_data=include_data)
            matched = [e for e in execs if (not finished or e.get("stoppedAt")) and (predicate is None or predicate(e))]
            if len(matched) >= count:
                return matched
            time.sleep(0.5)
        raise self._fail(
            f"expected {count} executions of workflow {workflow_id} within {timeout:.0f}s, "
            f"got {len(matched)}: {json.dumps(matched)[:2000]}"
        )


__all__ = [
    "DEFAULT_ENCRYPTION_KEY",
    "DEFAULT_N8N_VERSION",
    "DEFAULT_OWNER",
    "INSTALL_HINT",
    "QUIET_ENV",
    "N8nError",
    "N8nInstall",
    "N8nInstance",
    "N8nNotInstalled",
    "free_port",
    "pack_directory",
]
