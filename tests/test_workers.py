"""FRIDAY_WORKERS > 1: one `friday serve` supervisor, N worker processes on the same ports (issue 11).

Real processes on real Redis (the session redis-server, and once the embedded default). Which
worker serves a connection is read from /proc, not from anything the sidecar says: the worker
process holding the server end of that TCP connection (its socket inode in /proc/PID/fd, the
connection in /proc/net/tcp).

* both doors answer, and new HTTP connections and new gRPC channels are served by both workers;
  the background loops are started once (by the supervisor), the startup line comes once;
* a gRPC Subscribe on one worker and HTTP long polls on another get everything published through
  connections on either worker exactly once (acks through a connection on the other worker);
* /metrics on any worker shows the counters of all (multiprocess mode) and the status gauges;
* a SIGKILLed worker is restarted, the other serves on, counters keep what the dead one counted;
* SIGTERM to the supervisor (embedded Redis): exit 0, every process gone (workers, embedded
  Redis), the metrics folder removed, and what a consumer held unacked is still pending;
* settings: FRIDAY_WORKERS 0, too many, ports 0 with workers; a taken port fails before Redis.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from friday_bus.core.errors import ConfigError
from friday_bus.core.settings import MAX_WORKERS, load_settings
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conformance.doors import GrpcDoor
from tests.sidecar_fixture import Sidecar, serve_command

from .conftest import env_without_friday, free_port

WAIT_S = 60.0
CONNECTIONS = 24
"""New connections per door and check: all on one of two workers has odds 2 * 0.5**24 with an even spread."""


# ------------------------------------------------------------------------------ /proc


def _ppid_and_state(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[0]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            info = _ppid_and_state(int(d))
            if info is not None and info[0] == pid and info[1] != "Z":
                out.append(int(d))
    return out


def worker_pids(car: Sidecar) -> set[int]:
    return {p for p in children(car.pid) if b"friday_bus.workers" in _cmdline(p)}


def gone(pid: int) -> bool:
    info = _ppid_and_state(pid)
    return info is None or info[1] == "Z"


def socket_inodes(pid: int) -> set[int]:
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def tcp_established() -> list[tuple[int, int, int]]:
    """(local port, remote port, inode) of every established TCP connection of this network namespace."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "01":  # ESTABLISHED
                out.append((int(parts[1].rsplit(":", 1)[1], 16), int(parts[2].rsplit(":", 1)[1], 16), int(parts[9])))
    return out


def serving_pid(pids: set[int], server_port: int, client_port: int) -> int | None:
    """The process among ``pids`` holding the server end of the connection from ``client_port``."""
    inodes = {inode for local, remote, inode in tcp_established() if local == server_port and remote == client_port}
    for pid in pids:
        if socket_inodes(pid) & inodes:
            return pid
    return None


def my_ports_to(server_port: int) -> set[int]:
    """Local ports of this test process's connections to ``server_port``."""
    mine = socket_inodes(os.getpid())
    return {local for local, remote, inode in tcp_established() if remote == server_port and inode in mine}


def port_of(url_or_target: str) -> int:
    return int(url_or_target.rsplit(":", 1)[1])


# ------------------------------------------------------------------------------ helpers


def wait_for(what: str, check: Callable[[], Any], car: Sidecar | None = None, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"waited too long for {what}" + (f":\n{car.log_tail()}" if car else ""))


def log_text(car: Sidecar) -> str:
    return car.log_path.read_text(errors="replace")


def start_workers(start_sidecar: Callable[..., Sidecar], n: int = 2, **env: Any) -> Sidecar:
    car = start_sidecar(FRIDAY_WORKERS=n, **env)
    wait_for("the startup line", lambda: re.search(r"^friday: HTTP on .*, \d+ workers$", log_text(car), re.MULTILINE), car)
    wait_for(f"{n} workers", lambda: len(worker_pids(car)) == n, car)
    return car


class Conn:
    """One HTTP/1.1 keep-alive connection; each answer says which worker process served it."""

    def __init__(self, car: Sidecar) -> None:
        self.car = car
        self.port = port_of(car.http_url)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, int | None]:
        """(status, JSON body or text, pid of the worker that answered); reconnects once if the
        server had closed the idle connection (keep-alive timeout) before the request went out."""
        headers = {**self.car.headers(), "Content-Type": "application/json"}
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                self.conn.close()
                if attempt == 2:
                    raise
        assert self.conn.sock is not None
        pid = serving_pid(worker_pids(self.car), self.port, self.conn.sock.getsockname()[1])
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return resp.status, parsed, pid

    def close(self) -> None:
        self.conn.close()


def http_spread(car: Sidecar, n: int = CONNECTIONS) -> Counter[int | None]:
    """``n`` new HTTP connections (GET /readyz each): how many each worker served."""
    served: Counter[int | None] = Counter()
    for _ in range(n):
        c = Conn(car)
        status, body, pid = c.request("GET", "/readyz")
        assert status == 200, body
        served[pid] += 1
        c.close()
    return served


async def grpc_spread(car: Sidecar, n: int = CONNECTIONS) -> Counter[int | None]:
    """``n`` new gRPC channels (a health Check each, own connection): how many each worker served."""
    port = port_of(car.grpc_target)
    served: Counter[int | None] = Counter()
    for _ in range(n):
        before = my_ports_to(port)
        async with grpc.aio.insecure_channel(car.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            new = my_ports_to(port) - before
            assert len(new) == 1, new
            served[serving_pid(worker_pids(car), port, new.pop())] += 1
    return served


def create_group(car: Sidecar, stream: str, group: str) -> None:
    c = Conn(car)
    status, body, _ = c.request("POST", f"/api/v1/streams/{stream}/groups", {"group": group, "start": "new"})
    c.close()
    assert status == 201, body


def conns_on(car: Sidecar, pid: int, n: int) -> list[Conn]:
    """``n`` open connections served by worker ``pid`` (new connections until enough landed there)."""
    out: list[Conn] = []
    for _ in range(40 * n):
        c = Conn(car)
        status, _, served = c.request("GET", "/readyz")
        assert status == 200
        if served == pid and len(out) < n:
            out.append(c)
        else:
            c.close()
        if len(out) == n:
            return out
    pytest.fail(f"no {n} connections landed on worker {pid} in {40 * n} tries")


def publish(conn: Conn, stream: str, payload: dict[str, Any]) -> tuple[str, int | None]:
    status, body, pid = conn.request("POST", "/api/v1/events/publish",
                                     {"stream": stream, "payload": payload, "idempotency_key": payload["k"]})
    assert status == 200, body
    return body["id"], pid


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            sample, _, value = line.rpartition(" ")
            found = dict(re.findall(r'(\w+)="([^"]*)"', sample))
            if sample.split("{")[0] == name and all(found.get(k) == v for k, v in labels.items()):
                return float(value)
    return None


def scrape_each_worker(car: Sidecar) -> dict[int, str]:
    """/metrics as each worker answers it."""
    out: dict[int, str] = {}
    pids = worker_pids(car)
    for _ in range(200):
        c = Conn(car)
        status, body, pid = c.request("GET", "/metrics")
        c.close()
        assert status == 200, body
        if pid is not None and pid not in out:
            out[pid] = body
        if set(out) == pids:
            return out
    pytest.fail(f"no scrape from every worker {pids}: got {set(out)}")


# ------------------------------------------------------------------------------ tests


def test_two_workers_serve_both_doors_and_loops_run_once(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_workers(start_sidecar)
    pids = worker_pids(car)
    assert len(pids) == 2 and car.pid not in pids
    text = log_text(car)
    assert len(re.findall(r"^friday: HTTP on ", text, re.MULTILINE)) == 1, text
    assert f", gRPC on {car.grpc_target}, Redis {car.redis_url}, 2 workers" in text, text
    # The loops run once, in the supervisor (its log lines carry no "worker N"); no worker runs setup.
    loops = [line for line in text.splitlines() if "friday.runtime: background loops started" in line]
    assert len(loops) == 1 and " worker " not in loops[0], text
    assert not re.search(r" worker \d+ friday\.runtime: (setup created|ALERT)", text), text

    http_served = http_spread(car)
    assert set(http_served) == pids, f"HTTP connections by worker: {http_served} (workers {pids})"
    grpc_served = asyncio.run(grpc_spread(car))
    assert set(grpc_served) == pids, f"gRPC channels by worker: {grpc_served} (workers {pids})"


def test_subscribe_and_long_polls_across_workers_get_everything_once(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_workers(start_sidecar)
    pids = worker_pids(car)
    stream = f"wk.{uuid.uuid4().hex[:8]}"
    create_group(car, stream, "g-grpc")
    create_group(car, stream, "g-http")
    n = 60
    grpc_port = port_of(car.grpc_target)

    async def go() -> None:
        door = GrpcDoor(car.grpc_target, car.api_key)
        before = my_ports_to(grpc_port)
        await door.client.list_streams()  # opens the client's one connection
        [sub_port] = my_ports_to(grpc_port) - before
        sub_pid = serving_pid(pids, grpc_port, sub_port)
        [other] = pids - {sub_pid}
        http_reader, http_acker = conns_on(car, other, 1)[0], conns_on(car, sub_pid, 1)[0]
        publishers = conns_on(car, sub_pid, 2) + conns_on(car, other, 2)

        grpc_got: list[tuple[str, int]] = []
        http_got: list[tuple[str, int, int | None]] = []  # (id, delivery count, worker that read it)
        done = threading.Event()

        def long_polls() -> None:
            base = f"/api/v1/streams/{stream}/groups/g-http"
            while len({i for i, _, _ in http_got}) < n and not done.is_set():
                status, body, pid = http_reader.request("POST", f"{base}/read", {"consumer": "c-http", "count": 10, "block_ms": 1000})
                assert status == 200, body
                batch = body["deliveries"]
                http_got.extend((d["id"], d["delivery_count"], pid) for d in batch)
                if batch:  # acked through a connection on the other worker: the consumer name is the caller's
                    status, body, _ = http_acker.request("POST", f"{base}/ack", {"ids": [d["id"] for d in batch]})
                    assert status == 200 and body["acked"] == len(batch), body

        reader = asyncio.create_task(asyncio.to_thread(long_polls))
        sub = door.client.subscribe(stream, "g-grpc", "c-grpc", max_in_flight=10)
        it = sub.__aiter__()
        try:
            published: dict[str, int | None] = {}
            for i in range(n):
                entry, pid = await asyncio.to_thread(publish, publishers[i % len(publishers)], stream, {"i": i, "k": f"e{i}"})
                published[entry] = pid
            while len(grpc_got) < n:
                d = await asyncio.wait_for(it.__anext__(), WAIT_S)
                grpc_got.append((d.id, d.delivery_count))
                await d.ack()
            await asyncio.wait_for(reader, WAIT_S)
        finally:
            done.set()
            await door.close()
            for c in [http_reader, http_acker, *publishers]:
                c.close()

        assert set(published.values()) == pids, f"publishes by worker: {Counter(published.values())}"
        for label, got in (("gRPC", [(i, c) for i, c in grpc_got]), ("HTTP", [(i, c) for i, c, _ in http_got])):
            ids = Counter(i for i, _ in got)
            assert set(ids) == set(published) and max(ids.values()) == 1, f"{label}: {ids}"
            assert {c for _, c in got} == {1}, f"{label}: a delivery counted twice: {got}"
        # Across workers: Subscribe on one worker got what the other worker's connections published,
        # and the long polls (on the other worker) got what the Subscribe's worker published.
        assert any(published[i] == other for i, _ in grpc_got)
        assert {pid for _, _, pid in http_got} == {other}
        assert any(published[i] == sub_pid for i, _, _ in http_got)
        c = Conn(car)
        status, body, _ = c.request("GET", f"/api/v1/streams/{stream}/status")
        c.close()
        assert status == 200, body
        assert {g["name"]: g["pending"] for g in body["groups"]} == {"g-grpc": 0, "g-http": 0}, body

    asyncio.run(go())


def test_metrics_from_any_worker_count_every_worker(start_sidecar: Callable[..., Sidecar]) -> None:
    # its own (embedded) Redis: the topology stream below is shared by other tests on the session Redis
    car = start_workers(start_sidecar, redis_url=None)
    pids = worker_pids(car)
    stream, group = "email.received", "email-processor"  # a topology stream: the status gauges cover those
    served: Counter[int | None] = Counter()
    n = 30
    for i in range(n):
        c = Conn(car)  # a new connection each: the publishes land on both workers
        served[publish(c, stream, {"i": i, "k": f"m{i}"})[1]] += 1
        c.close()
    assert set(served) == pids, served
    for pid, text in scrape_each_worker(car).items():
        assert metric(text, "friday_events_published_total", stream=stream, kind="stream") == n, (pid, served)
        assert metric(text, "friday_stream_length", stream=stream) == n, pid
        assert metric(text, "friday_group_lag", stream=stream, group=group) == n, pid
        assert metric(text, "friday_redis_up") == 1, pid
        assert metric(text, "friday_publish_duration_seconds_count", kind="stream") is not None, pid


def test_killed_worker_is_restarted_and_the_other_serves_on(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_workers(start_sidecar)
    pids = worker_pids(car)
    victim, survivor = sorted(pids)
    stream = f"wk.{uuid.uuid4().hex[:8]}"
    create_group(car, stream, "g")
    published: set[str] = set()
    for i in range(10):
        c = Conn(car)
        published.add(publish(c, stream, {"i": i, "k": f"before{i}"})[0])
        c.close()

    os.kill(victim, signal.SIGKILL)
    wait_for("the victim's death", lambda: gone(victim) or victim not in worker_pids(car), car)
    for i in range(20):  # new connections meanwhile: the survivor (and then the new worker) take them
        c = Conn(car)
        entry, pid = publish(c, stream, {"i": i, "k": f"after{i}"})
        c.close()
        assert pid is not None and pid != victim
        published.add(entry)
    restarted = wait_for("the restart", lambda: re.search(r"worker (\d+) restarted \(pid (\d+)\)", log_text(car)), car)
    new_pid = int(restarted.group(2))
    assert worker_pids(car) == {survivor, new_pid}, log_text(car)
    assert car.alive()
    assert re.search(rf"worker {restarted.group(1)} \(pid {victim}\) was killed by SIGKILL; restarting it in", log_text(car))
    served = http_spread(car)
    assert set(served) == {survivor, new_pid}, served
    assert set(asyncio.run(grpc_spread(car))) == {survivor, new_pid}
    for pid, text in scrape_each_worker(car).items():  # the dead worker's counts are kept
        assert metric(text, "friday_events_published_total", stream=stream, kind="stream") == len(published) == 30, pid
    c = Conn(car)
    status, body, _ = c.request("GET", f"/api/v1/streams/{stream}/status")
    c.close()
    assert status == 200 and body["length"] == 30, body


def test_sigterm_stops_every_process_with_embedded_redis(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_workers(start_sidecar, redis_url=None)
    text = log_text(car)
    assert f"Redis embedded ({car.env['FRIDAY_DATA_DIR']}/), 2 workers" in text, text
    pids = worker_pids(car)
    [redis_pid] = [p for p in children(car.pid) if b"redis-server" in _cmdline(p)]
    metrics_dirs = set()
    for pid in pids:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        metrics_dirs.add(env[b"PROMETHEUS_MULTIPROC_DIR"].decode())
        assert env[b"FRIDAY_REDIS_URL"].decode() == f"unix://{car.env['FRIDAY_DATA_DIR']}/redis.sock"
    [metrics_dir] = metrics_dirs
    assert os.path.isdir(metrics_dir)
    assert set(http_spread(car)) == pids
    assert set(asyncio.run(grpc_spread(car))) == pids

    # A consumer holds one delivery, unacked, when the sidecar stops.
    c = Conn(car)
    entry, _ = publish(c, "email.received", {"k": "held"})
    status, body, _ = c.request("POST", "/api/v1/streams/email.received/groups/email-processor/read",
                                {"consumer": "holder", "count": 10, "block_ms": 1000})
    c.close()
    assert status == 200 and [d["id"] for d in body["deliveries"]] == [entry], body

    assert car.stop() == 0, car.log_tail()
    assert all(gone(p) for p in [*pids, redis_pid]), (pids, redis_pid)
    assert not os.path.exists(metrics_dir)
    text = log_text(car)
    assert text.count("SIGTERM received: shutting down") == 2, text  # each worker drained
    assert text.index("friday.server: stopped") < text.index("friday.embedded: embedded Redis stopped"), text

    # Nothing was acked on the consumer's behalf: still pending, to the same consumer.
    out = subprocess.run([car_exe(), "status", "--json", "--stream", "email.received"], check=False, cwd=car.workdir,
                         env={**car.env, "FRIDAY_WORKERS": "1"}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [st] = json.loads(out.stdout)["streams"]
    [grp] = [g for g in st["groups"] if g["name"] == "email-processor"]
    assert grp["pending"] == 1, grp


def car_exe() -> str:
    cmd = serve_command()
    assert cmd[-1] == "serve", cmd
    return cmd[0]


# ------------------------------------------------------------------------------ settings


@pytest.mark.parametrize("value", ["0", "-1", str(MAX_WORKERS + 1)])
def test_workers_out_of_range_says_how_to_fix(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRIDAY_WORKERS", value)
    with pytest.raises(ConfigError, match=rf"FRIDAY_WORKERS: .*must be between 1 \(one process\) and {MAX_WORKERS}"):
        load_settings(_env_file=None)


def test_workers_in_range_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(_env_file=None).workers == 1
    monkeypatch.setenv("FRIDAY_WORKERS", str(MAX_WORKERS))
    assert load_settings(_env_file=None).workers == MAX_WORKERS


@pytest.mark.parametrize("zero", ["FRIDAY_HTTP_PORT", "FRIDAY_GRPC_PORT"])
def test_workers_need_fixed_ports(zero: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(zero, "0")
    assert load_settings(_env_file=None).workers == 1  # one process may take any free port
    monkeypatch.setenv("FRIDAY_WORKERS", "2")
    with pytest.raises(ConfigError, match=rf"FRIDAY_WORKERS=2 needs fixed ports, and {zero} is 0 .*or FRIDAY_WORKERS=1"):
        load_settings(_env_file=None)


def test_serve_refuses_a_taken_port_before_starting_anything(tmp_path: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = env_without_friday()
        env.update({"FRIDAY_WORKERS": "2", "FRIDAY_HTTP_HOST": "127.0.0.1", "FRIDAY_HTTP_PORT": str(taken.getsockname()[1]),
                    "FRIDAY_GRPC_HOST": "127.0.0.1", "FRIDAY_GRPC_PORT": str(free_port()), "FRIDAY_DATA_DIR": str(tmp_path / "data")})
        out = subprocess.run([car_exe(), "serve"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert f"cannot listen for HTTP on 127.0.0.1:{env['FRIDAY_HTTP_PORT']}" in out.stderr and "Is the port taken?" in out.stderr, out.stderr
    assert not (tmp_path / "data").exists()  # failed before the embedded Redis


def test_serve_with_workers_and_port_zero_exits_with_the_fix(tmp_path: Any) -> None:
    env = env_without_friday()
    env.update({"FRIDAY_WORKERS": "3", "FRIDAY_HTTP_PORT": "0", "FRIDAY_DATA_DIR": str(tmp_path / "data")})
    out = subprocess.run([car_exe(), "serve"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "FRIDAY_WORKERS=3 needs fixed ports, and FRIDAY_HTTP_PORT is 0" in out.stderr, out.stderr


def test_second_signal_kills_workers_that_are_still_draining(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_workers(start_sidecar, FRIDAY_SHUTDOWN_GRACE_S=120)
    pids = worker_pids(car)
    port = port_of(car.http_url)
    # Requests in flight for as long as we like: the handler waits for a body that never comes
    # (the 100 Continue proves the handler runs), so each worker would drain for the whole grace.
    held: list[socket.socket] = []
    draining: set[int | None] = set()
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /api/v1/events/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + car.api_key.encode() + b"\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        held.append(s)
        draining.add(serving_pid(pids, port, s.getsockname()[1]))
        if draining == pids:
            break
    assert draining == pids
    try:
        car.signal(signal.SIGTERM)
        wait_for("both workers draining", lambda: log_text(car).count("SIGTERM received: shutting down") == 2, car)
        assert car.alive() and all(not gone(p) for p in pids)
        car.signal(signal.SIGTERM)
        assert car.wait(30) == 0, car.log_tail()  # the grace is 120 s: only the second signal ends it this soon
    finally:
        for s in held:
            s.close()
    assert "second signal: killing the workers" in log_text(car)
    assert all(gone(p) for p in pids)
    assert re.search(r"worker \d \(pid \d+\) was killed by SIGKILL while stopping", log_text(car)), log_text(car)


def test_workers_die_with_a_killed_supervisor(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_workers(start_sidecar)
    pids = worker_pids(car)
    car.kill()  # SIGKILL: no forwarding; the kernel's parent-death signal stops the workers
    wait_for("the workers' exit", lambda: all(gone(p) for p in pids), car)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port_of(car.http_url)), timeout=5).close()
