#!/usr/bin/env python3
"""Friday sidecar benchmark (issue 11): the direct redis-py baseline and the sidecar's two doors,
side by side in one run, on one Redis, with the CPU each process spends per event.

    python bench/bench.py                 # full sizes (~10 min; needs ~1 GB free RAM for the backlog)
    python bench/bench.py --quick         # scaled down (~3 min)
    python bench/bench.py --only batch,consume   # a subset (names below); the table shows what ran
    python bench/bench.py --profile       # also profile the (one-worker) sidecar with cProfile

It starts its own redis-server on a free port (AOF everysec, no rewrites during the run) and
`friday serve` as a subprocess (the tree's own sidecar/ on PYTHONPATH, auth on, log level WARNING),
then runs these scenarios (``--only`` names):

* ``batch``: 500 events per batch, one batch at a time: direct redis-py pipelined XADD of the same
  entries (non-transactional pipeline) vs ``FridayClient.publish_batch`` of ``Event`` objects vs
  HTTP POST /api/v1/events/publish/batch;
* ``consume``: consume + ack from a backlog filled directly in the sidecar's wire format:
  (a) direct XREADGROUP COUNT 500 + the sidecar's own ``decode_event`` per entry + one XACK per read,
  (b) the same without decoding, (c) the README's agent loop
  (``async for event in bus.subscribe(..., max_in_flight=10): await event.ack()``),
  (d) gRPC with acks not awaited one by one (max_in_flight=500), (e) HTTP read 500 + ack;
* ``latency``: single-event publish p50/p90/p99 at 1,000 events/s, open loop: direct XADD,
  gRPC ``publish``, HTTP POST /api/v1/events/publish;
* ``sweep``: the same single-event publishes at rising rates, until p99 passes 10 ms or the
  achieved rate falls below 90% of the asked one (per door, direct as the client's own limit);
* ``concurrent``: 50 asyncio tasks each awaiting one publish after another for 30 s (5 s with
  --quick): direct (one redis-py client), gRPC (one shared FridayClient), HTTP (50 keep-alive
  connections); the sidecar's peak RSS (VmHWM, reset before, summed over its processes) under it;
* ``backlog``: gRPC publish p99 on a stream with a 1,000,000-entry unconsumed backlog vs an empty one;
* ``workers``: if this build knows FRIDAY_WORKERS, the gRPC and HTTP parts of ``concurrent`` and
  the gRPC part of ``batch`` against a second sidecar with FRIDAY_WORKERS=2, next to 1 worker.

Every measured phase reports, next to its rate, CPU microseconds per event of each process: this
bench client (os.times()), the sidecar (all its processes: with workers the supervisor and its
children) and redis-server, from user+system time (/proc/PID/stat fields 14 and 15, clock ticks)
taken over exactly the measured phase. The machine's cores are shared by all three, so the CPU
figures are the ones that do not depend on the noise. At the end: one table of every target of
issue 11 with the measured value, the goal and MET/MISSED; results go to bench-results/.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import math
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "sidecar"))

# The Python client of the tree being measured: its own distribution (clients/python) once it
# exists, else the one inside the sidecar package (the older layout).
_CLIENT_DIST = ROOT / "clients" / "python"
for _p in (_CLIENT_DIST / "src", _CLIENT_DIST):
    if _p.is_dir():
        sys.path.insert(0, str(_p))
try:
    if not _CLIENT_DIST.is_dir():
        raise ImportError("no clients/python in this tree")
    import friday_bus_client as _client_module
    from friday_bus_client import Event, FridayClient
except ImportError:
    import friday_bus.client as _client_module
    from friday_bus.client import Event, FridayClient

from friday_bus.core.codec import decode_event, encode_event
from friday_bus.core.models import EventMeta

PAYLOAD = {"email_id": "msg-0001", "account": "friday@example.com", "has_attachments": True, "size": 48213,
           "score": 0.87, "labels": ["inbox", "work"]}
RATE = 1000
BATCH = 500
README_IN_FLIGHT = 10
PUBLISHERS = 50
PUBLISH_POOL = 64  # connections of the direct single-event publisher and of RawHttp (past them, a call waits)
SWEEP_RATES = (250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000)
SWEEP_P99_MS = 10.0
KEY = "bench-" + uuid.uuid4().hex
TICK = os.sysconf("SC_CLK_TCK")
SCENARIOS = ("batch", "consume", "latency", "sweep", "concurrent", "backlog", "workers")


@dataclass
class Sizes:
    latency_events: int
    batch_events: int
    consume_events: int
    readme_events: int  # the README loop (c) is ~10x slower than the others: fewer events
    sweep_seconds: float  # per rate step (at least sweep_min events)
    sweep_min: int
    concurrent_seconds: float
    concurrent_warmup: float
    backlog: int
    backlog_probe: int

    @classmethod
    def pick(cls, quick: bool) -> Sizes:
        if quick:
            return cls(latency_events=3_000, batch_events=30_000, consume_events=30_000, readme_events=5_000,
                       sweep_seconds=2.0, sweep_min=1_000, concurrent_seconds=5.0, concurrent_warmup=1.0,
                       backlog=100_000, backlog_probe=2_000)
        return cls(latency_events=10_000, batch_events=100_000, consume_events=100_000, readme_events=20_000,
                   sweep_seconds=3.0, sweep_min=1_000, concurrent_seconds=30.0, concurrent_warmup=2.0,
                   backlog=1_000_000, backlog_probe=10_000)


@dataclass
class Results:
    values: dict[str, Any] = field(default_factory=dict)

    def put(self, key: str, value: Any) -> None:
        self.values[key] = value
        if isinstance(value, dict) and "us_ev" in value:
            extra = "".join(f", {k} {value[k]}" for k in ("p50", "p90", "p99") if k in value)
            print(f"  {key}: {value['ev_s']:,} ev/s{extra}; CPU µs/event " +
                  ", ".join(f"{k} {v}" for k, v in value["us_ev"].items()), flush=True)
        else:
            print(f"  {key}: {value}", flush=True)


# ---------------------------------------------------------------------------- CPU and memory of processes


def cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process, all its threads (/proc/PID/stat fields 14 and 15); 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``: /proc/PID/task/*/children, else a scan of parent pids."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
        return out
    except OSError:
        pass
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
            except OSError:
                continue
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the sidecar's supervisor and its workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += child_pids(p)
    return out


def status_mb(pid: int, name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Meter:
    """Wall time and user+system CPU of this client, the sidecar's processes and Redis over
    exactly one measured phase: ``start()`` right before it, ``stop(events)`` right after."""

    def __init__(self, procs: dict[str, Callable[[], list[int]]]) -> None:
        self.procs = procs
        self.t0 = 0.0

    def start(self) -> None:
        self.c0 = {k: {p: cpu_s(p) for p in f()} for k, f in self.procs.items()}
        self.self0 = self_cpu_s()
        self.t0 = time.perf_counter()

    def stop(self, events: int) -> dict[str, Any]:
        seconds = time.perf_counter() - self.t0
        client = self_cpu_s() - self.self0
        n = max(1, events)
        out: dict[str, Any] = {"events": events, "seconds": round(seconds, 3), "ev_s": round(events / seconds),
                               "us_ev": {"client": round(client * 1e6 / n, 1)}}
        for k, f in self.procs.items():
            before = self.c0[k]
            per = {p: max(0.0, cpu_s(p) - before.get(p, 0.0)) for p in sorted(set(before) | set(f()))}
            out["us_ev"][k] = round(sum(per.values()) * 1e6 / n, 1)
            if len(per) > 1:
                out[f"{k}_processes_us_ev"] = {str(p): round(v * 1e6 / n, 1) for p, v in per.items()}
        out["us_ev"]["total"] = round(sum(out["us_ev"].values()), 1)
        return out


# ---------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: run `make bench` (it installs it) or apt-get install redis-server")
    port = free_port()
    log = workdir / "redis.log"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
         "--appendonly", "yes", "--appendfsync", "everysec", "--auto-aof-rewrite-percentage", "0",
         "--logfile", str(log), "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc, "redis-server", log)
    return proc, f"redis://127.0.0.1:{port}/0"


@dataclass
class Sidecar:
    proc: subprocess.Popen[bytes]
    http_url: str
    grpc_target: str
    log: Path
    profile: Path | None
    workers: int = 1

    def pids(self) -> list[int]:
        """The sidecar's processes: the one process, or the supervisor and its workers."""
        return process_tree(self.proc.pid) if self.proc.poll() is None else []

    def vm_hwm_mb(self) -> float:
        """Peak RSS (VmHWM), summed over the sidecar's processes."""
        return sum(status_mb(p, "VmHWM") for p in self.pids()) or float("nan")

    def vm_rss_mb(self) -> float:
        return sum(status_mb(p, "VmRSS") for p in self.pids()) or float("nan")

    def reset_peak_rss(self) -> bool:
        """Reset VmHWM to the current RSS (``5`` into /proc/PID/clear_refs), so a later read is the
        peak of what came after. False where the kernel does not allow it."""
        try:
            for p in self.pids():
                Path(f"/proc/{p}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# The sidecar records its garbage-collection pauses over 1 ms (they make the latency tail).
GC_PROBE = """
import gc, os, time
if os.environ.get("BENCH_GC_OUT"):
    import atexit
    _starts, _pauses = {}, []
    def _cb(phase, info):
        if phase == "start":
            _starts[info["generation"]] = time.perf_counter()
        else:
            ms = (time.perf_counter() - _starts.get(info["generation"], time.perf_counter())) * 1000
            if ms > 1:
                _pauses.append((info["generation"], round(ms, 1)))
    gc.callbacks.append(_cb)
    atexit.register(lambda: open(os.environ["BENCH_GC_OUT"], "w").write(repr(_pauses)))
"""

# Which code the sidecar runs (the log's first line; main_async prints it).
WHICH = "import friday_bus, sys\nprint('bench sidecar runs friday_bus from', friday_bus.__file__, flush=True)\n"


def workers_available() -> bool:
    """Whether this build's settings know FRIDAY_WORKERS."""
    from friday_bus.core import settings

    return "workers" in getattr(settings.Settings, "model_fields", {})


def start_sidecar(workdir: Path, redis_url: str, profile: bool, workers: int = 1) -> Sidecar:
    workdir.mkdir(parents=True, exist_ok=True)
    topology = workdir / "topology.json"
    topology.write_text(json.dumps({
        "streams": {"bench.backlog": ["g"], "bench.empty": ["g"]},
        "channels": ["bench.info"],
        "allow_unknown_streams": True,
    }))
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRIDAY_")}
    env.update({
        # the tree's own sidecar first (a worktree of an older commit runs its own code)
        "PYTHONPATH": os.pathsep.join([str(ROOT / "sidecar"), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "FRIDAY_REDIS_URL": redis_url,
        "FRIDAY_TOPOLOGY_FILE": str(topology),
        "FRIDAY_HTTP_HOST": "127.0.0.1", "FRIDAY_HTTP_PORT": str(http_port),
        "FRIDAY_GRPC_HOST": "127.0.0.1", "FRIDAY_GRPC_PORT": str(grpc_port),
        "FRIDAY_API_KEYS": KEY,
        "FRIDAY_LOG_LEVEL": "WARNING",
        "FRIDAY_DATA_DIR": str(workdir / "data"),
        "BENCH_GC_OUT": str(workdir / "gc-pauses.txt"),
    })
    if workers > 1:
        env["FRIDAY_WORKERS"] = str(workers)
    # `friday serve`, started through Python so that --profile can wrap it in cProfile
    script = workdir / "bench_sidecar.py"
    script.write_text(WHICH + GC_PROBE + "from friday_bus.server import run\nfrom friday_bus.core import load_settings\n"
                      "run(load_settings())\n")
    prof = workdir / "sidecar.prof" if profile else None
    cmd = [sys.executable, *(["-m", "cProfile", "-o", str(prof)] if prof else []), str(script)]
    log = workdir / "sidecar.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_port(http_port, proc, "the sidecar (HTTP)", log)
    wait_port(grpc_port, proc, "the sidecar (gRPC)", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the listen line comes once every worker listens
        if "friday: HTTP on" in log.read_text(errors="replace"):
            break
        if proc.poll() is not None:
            raise SystemExit(f"the sidecar exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return Sidecar(proc, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", log, prof, workers)


# ---------------------------------------------------------------------------- a lean HTTP client


class RawHttp:
    """A minimal keep-alive HTTP/1.1 JSON client (a pool of connections). httpx costs about a
    millisecond of client CPU per request, which would measure the client, not the sidecar."""

    def __init__(self, url: str, key: str, size: int = PUBLISH_POOL) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.auth = f"Bearer {key}"
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.size = size
        self.opened = 0

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.free.empty() and self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self.free.get()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: {self.auth}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode()
        reader, writer = await self._conn()
        try:
            writer.write(head + data)
            status_line = await reader.readline()
        except ConnectionError:
            status_line = b""
        if not status_line:  # the server closed an idle keep-alive connection: reconnect once
            writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            writer.write(head + data)
            status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await reader.readexactly(length)
        self.free.put_nowait((reader, writer))
        return int(status_line.split()[1]), json.loads(payload) if payload else None

    async def close(self) -> None:
        while not self.free.empty():
            _, w = self.free.get_nowait()
            w.close()


# ---------------------------------------------------------------------------- measuring


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def seed_fields(payload: dict[str, Any]) -> dict[str, str]:
    """The seed's publisher encoding: one field per key, dicts/lists as JSON, the rest str()."""
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in payload.items()}


async def paced(n: int, rate: float, op: Callable[[int], Awaitable[Any]], timing: dict[str, float] | None = None) -> list[float]:
    """Open loop: start op(i) at start + i/rate whatever the previous ones do; latencies in ms.
    ``timing["elapsed"]``: seconds from the first planned start to the last completion."""
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    tasks = []

    async def one(i: int) -> None:
        t0 = time.perf_counter()
        await op(i)
        lat.append((time.perf_counter() - t0) * 1000)

    start = loop.time() + 0.05
    for i in range(n):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    if timing is not None:
        timing["elapsed"] = loop.time() - start
    return lat


def summary(lat: list[float]) -> dict[str, float]:
    return {"p50": round(pct(lat, 50), 3), "p90": round(pct(lat, 90), 3), "p99": round(pct(lat, 99), 3)}


async def throughput(total: int, concurrency: int, step: Callable[[int], Awaitable[int]]) -> float:
    """Events/s for ``total`` events done by ``concurrency`` workers calling ``step(worker)``
    (which returns how many events it handled). Right for one worker only (see bench_cluster.concurrent)."""
    remaining = total

    async def worker(w: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= await step(w)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return total / (time.perf_counter() - t0)


def friday_fields(payload: dict[str, Any]) -> dict[str, str]:
    """Entry fields exactly as the sidecar writes them (its codec), for fills and direct publishes."""
    return encode_event(payload, EventMeta(), int(time.time() * 1000))


async def fill(r: aioredis.Redis, stream: str, n: int, chunk: int = 10_000) -> None:
    """Fill directly in the sidecar's format (fast, and keeps the sidecar's profile clean)."""
    fields = friday_fields(PAYLOAD)
    for done in range(0, n, chunk):
        async with r.pipeline(transaction=False) as p:
            for _ in range(min(chunk, n - done)):
                p.xadd(stream, fields)
            await p.execute()


async def grpc_consume_ack(grpc_c: Any, stream: str, n: int) -> None:
    """Take ``n`` deliveries of group ``g`` through the gRPC client and ack each (acks not awaited
    one by one: the acks of a loop turn travel together)."""
    got, acks = 0, []
    async with grpc_c.subscribe(stream, "g", "c1", max_in_flight=BATCH) as sub:
        async for d in sub:
            acks.append(d.ack())
            got += 1
            if got == n:
                break
        await asyncio.gather(*acks)


async def readme_consume_ack(bus: Any, stream: str, n: int) -> None:
    """The README's agent loop (examples/agent.py) without its publish: ``n`` deliveries, each
    acked and awaited before the next, ``max_in_flight=10``."""
    sub = bus.subscribe(stream, "g", "c1", max_in_flight=README_IN_FLIGHT)
    got = 0
    try:
        async for event in sub:
            await event.ack()
            got += 1
            if got == n:
                break
    finally:
        await sub.close()


async def http_consume_ack(http: Any, stream: str, n: int) -> None:
    """Take ``n`` deliveries of group ``g`` over HTTP (read ``BATCH`` at a time, one ack per read)."""
    got, base = 0, f"/api/v1/streams/{stream}/groups/g"
    while got < n:
        status, out = await http.post(f"{base}/read", {"consumer": "c1", "count": BATCH, "block_ms": 1000})
        if status != 200:
            raise SystemExit(f"HTTP read failed: {status} {out}")
        ids = [d["id"] for d in out["deliveries"]]
        if ids:
            status, out = await http.post(f"{base}/ack", {"ids": ids})
            if status != 200:
                raise SystemExit(f"HTTP ack failed: {status} {out}")
            got += len(ids)


async def direct_consume_ack(r: aioredis.Redis, stream: str, n: int, decode: bool) -> None:
    """Direct redis-py: XREADGROUP COUNT 500, (decode every entry with the sidecar's decode_event),
    one XACK per read."""
    got = 0
    while got < n:
        reply = await r.xreadgroup("g", "c1", {stream: ">"}, count=BATCH, block=1000)
        if not reply:
            continue
        entries = reply[0][1]
        if decode:
            for eid, fields in entries:
                decode_event(eid, fields)
        await r.xack(stream, "g", *[eid for eid, _ in entries])
        got += len(entries)


# ---------------------------------------------------------------------------- scenarios


@dataclass
class Ctx:
    sizes: Sizes
    res: Results
    r: aioredis.Redis
    redis_pid: int
    sidecar: Sidecar
    grpc_c: Any
    http: RawHttp
    work: Path
    redis_url: str
    r_pub: aioredis.Redis  # direct single-event publishes: a pool of PUBLISH_POOL connections, like RawHttp's

    def meter(self, sidecar: Sidecar | None = None) -> Meter:
        sc = sidecar or self.sidecar
        return Meter({"sidecar": sc.pids, "redis": lambda: [self.redis_pid]})


async def measure(m: Meter, events: int, run: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    m.start()
    await run()
    return m.stop(events)


async def batch_grpc(ctx: Ctx, grpc_c: Any, sidecar: Sidecar, tag: str) -> dict[str, Any]:
    stream = f"bench.batch.grpc.{tag}"

    async def step(w: int) -> int:  # Event objects built per call, as a user would
        await grpc_c.publish_batch([Event(stream, PAYLOAD) for _ in range(BATCH)])
        return BATCH
    await throughput(BATCH * 4, 1, step)  # warm-up
    return await measure(ctx.meter(sidecar), ctx.sizes.batch_events, lambda: throughput(ctx.sizes.batch_events, 1, step))


async def bench_batch(ctx: Ctx) -> None:
    n = ctx.sizes.batch_events
    print(f"1. batch publish ({n:,} events, batches of {BATCH}, one batch at a time)", flush=True)
    fields = friday_fields(PAYLOAD)
    tag = uuid.uuid4().hex[:6]

    async def direct(w: int) -> int:
        async with ctx.r.pipeline(transaction=False) as p:
            for _ in range(BATCH):
                p.xadd(f"bench.batch.direct.{tag}", fields)
            await p.execute()
        return BATCH

    body = {"events": [{"stream": f"bench.batch.http.{tag}", "payload": PAYLOAD} for _ in range(BATCH)]}

    async def via_http(w: int) -> int:
        status, out = await ctx.http.post("/api/v1/events/publish/batch", body)
        if status != 200:
            raise SystemExit(f"HTTP batch failed: {status} {out}")
        return BATCH

    await throughput(BATCH * 4, 1, direct)
    ctx.res.put("batch.direct", await measure(ctx.meter(), n, lambda: throughput(n, 1, direct)))
    ctx.res.put("batch.grpc", await batch_grpc(ctx, ctx.grpc_c, ctx.sidecar, tag))
    await throughput(BATCH * 4, 1, via_http)
    ctx.res.put("batch.http", await measure(ctx.meter(), n, lambda: throughput(n, 1, via_http)))


async def bench_consume(ctx: Ctx) -> None:
    n, n_readme = ctx.sizes.consume_events, ctx.sizes.readme_events
    print(f"2. consume + ack ({n:,} events each; {n_readme:,} for the README loop)", flush=True)
    tag = uuid.uuid4().hex[:6]
    variants: dict[str, tuple[int, Callable[[str], Awaitable[None]]]] = {
        "direct_decode": (n, lambda s: direct_consume_ack(ctx.r, s, n, decode=True)),
        "direct_raw": (n, lambda s: direct_consume_ack(ctx.r, s, n, decode=False)),
        "grpc_readme": (n_readme, lambda s: readme_consume_ack(ctx.grpc_c, s, n_readme)),
        "grpc_unawaited": (n, lambda s: grpc_consume_ack(ctx.grpc_c, s, n)),
        "http": (n, lambda s: http_consume_ack(ctx.http, s, n)),
    }
    streams = {k: f"bench.consume.{k}.{tag}" for k in variants}
    for k, s in streams.items():
        await ctx.r.xgroup_create(s, "g", "0", mkstream=True)
        await fill(ctx.r, s, variants[k][0])
    for k, (count, fn) in variants.items():
        ctx.res.put(f"consume.{k}", await measure(ctx.meter(), count, lambda fn=fn, s=streams[k]: fn(s)))
    pending = {k: (await ctx.r.xpending(s, "g"))["pending"] for k, s in streams.items()}
    assert all(v == 0 for v in pending.values()), f"un-acked entries left: {pending}"
    for s in streams.values():
        await ctx.r.delete(s)


def publish_ops(ctx: Ctx, grpc_c: Any, http: RawHttp, tag: str) -> dict[str, Callable[[int], Awaitable[Any]]]:
    """One single-event publish per door: direct XADD (the sidecar's fields), gRPC publish, HTTP POST."""
    fields = friday_fields(PAYLOAD)
    s_direct, s_grpc, s_http = (f"bench.pub.{k}.{tag}" for k in ("direct", "grpc", "http"))

    async def direct(i: int) -> None:
        await ctx.r_pub.xadd(s_direct, fields)

    async def via_grpc(i: int) -> None:
        await grpc_c.publish(s_grpc, PAYLOAD)

    async def via_http(i: int) -> None:
        status, body = await http.post("/api/v1/events/publish", {"stream": s_http, "payload": PAYLOAD})
        if status != 200:
            raise SystemExit(f"HTTP publish failed: {status} {body}")

    return {"direct": direct, "grpc": via_grpc, "http": via_http}


async def paced_phase(ctx: Ctx, n: int, rate: float, op: Callable[[int], Awaitable[Any]]) -> dict[str, Any]:
    m = ctx.meter()
    timing: dict[str, float] = {}
    m.start()
    lat = await paced(n, rate, op, timing)
    out = m.stop(n)
    out["ev_s"] = round(n / timing["elapsed"])  # achieved: first planned start to last completion
    return {**out, **summary(lat)}


async def bench_latency(ctx: Ctx) -> None:
    n = ctx.sizes.latency_events
    print(f"3. publish latency at {RATE} ev/s, one event per call, open loop ({n:,} events each)", flush=True)
    for name, op in publish_ops(ctx, ctx.grpc_c, ctx.http, uuid.uuid4().hex[:6]).items():
        await paced(200, RATE, op)  # warm-up
        ctx.res.put(f"latency.{name}", await paced_phase(ctx, n, RATE, op))


async def bench_sweep(ctx: Ctx) -> None:
    print(f"3b. publish rate sweep: rising rates until p99 > {SWEEP_P99_MS:.0f} ms or the achieved rate "
          f"< 90% of the asked one, twice in a row at that rate ({ctx.sizes.sweep_seconds:g} s per step)", flush=True)
    for name, op in publish_ops(ctx, ctx.grpc_c, ctx.http, uuid.uuid4().hex[:6]).items():
        await paced(200, RATE, op)
        steps: list[dict[str, Any]] = []
        last_ok = first_over = None
        for rate in SWEEP_RATES:
            n = max(ctx.sizes.sweep_min, int(rate * ctx.sizes.sweep_seconds))
            for attempt in (1, 2):  # a step that fails is run once more: one GC pause can make a p99 here
                ph = await paced_phase(ctx, n, rate, op)
                ph["rate"], ph["attempt"] = rate, attempt
                steps.append(ph)
                over = ph["p99"] > SWEEP_P99_MS
                short = ph["ev_s"] < 0.9 * rate
                print(f"    {name:6} {rate:>6} ev/s asked: {ph['ev_s']:>6,} achieved, p50 {ph['p50']:.2f} "
                      f"p99 {ph['p99']:.2f} ms, sidecar {ph['us_ev']['sidecar']} µs/ev, client {ph['us_ev']['client']} µs/ev"
                      + (" (again)" if attempt == 2 else ""), flush=True)
                await asyncio.sleep(0.3)
                if not (over or short):
                    break
            if over or short:
                first_over = {"rate": rate, "p99": ph["p99"], "achieved": ph["ev_s"],
                              "why": "p99 > 10 ms" if over else "achieved < 90% of the rate"}
                break
            last_ok = {"rate": rate, "p99": ph["p99"], "achieved": ph["ev_s"], "sidecar_us_ev": ph["us_ev"]["sidecar"]}
        ctx.res.values[f"sweep.{name}.steps"] = steps
        ctx.res.put(f"sweep.{name}", {"last_under": last_ok, "first_over": first_over})


async def concurrent_phase(ctx: Ctx, sidecar: Sidecar, op: Callable[[int], Awaitable[Any]]) -> dict[str, Any]:
    """PUBLISHERS tasks, each awaiting one publish after another: warm-up, then the measured seconds."""
    sizes = ctx.sizes
    counting = False
    lat: list[float] = []
    stop_at = time.monotonic() + sizes.concurrent_warmup + sizes.concurrent_seconds

    async def publisher(w: int) -> None:
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            await op(w)
            if counting:
                lat.append((time.perf_counter() - t0) * 1000)

    tasks = [asyncio.create_task(publisher(w)) for w in range(PUBLISHERS)]
    await asyncio.sleep(sizes.concurrent_warmup)
    m = ctx.meter(sidecar)
    m.start()
    counting = True
    await asyncio.gather(*tasks)
    return {**m.stop(len(lat)), **summary(lat)}


async def bench_concurrent(ctx: Ctx) -> None:
    print(f"4. {PUBLISHERS} concurrent single-event publishers, {ctx.sizes.concurrent_seconds:g} s each", flush=True)
    http = RawHttp(ctx.sidecar.http_url, KEY, size=PUBLISHERS)
    try:
        reset = ctx.sidecar.reset_peak_rss()
        ops = publish_ops(ctx, ctx.grpc_c, http, uuid.uuid4().hex[:6])
        for name, op in ops.items():
            ctx.res.put(f"concurrent.{name}", await concurrent_phase(ctx, ctx.sidecar, op))
        ctx.res.put("rss.peak_concurrent_mb", round(ctx.sidecar.vm_hwm_mb(), 1))
        ctx.res.values["rss.peak_concurrent_reset"] = reset
    finally:
        await http.close()


async def bench_backlog(ctx: Ctx) -> None:
    sizes, r = ctx.sizes, ctx.r
    print(f"publish p99 with a {sizes.backlog:,}-entry backlog vs an empty stream", flush=True)
    full, empty = "bench.backlog", "bench.empty"
    t0 = time.perf_counter()
    await fill(r, full, sizes.backlog)
    print(f"  (filled {await r.xlen(full):,} entries in {time.perf_counter() - t0:.1f} s; "
          f"group lag {(await r.xinfo_groups(full))[0].get('lag')})", flush=True)
    lat: dict[str, list[float]] = {full: [], empty: []}
    cpu: dict[str, dict[str, float]] = {full: {}, empty: {}}
    rounds = 10
    per = max(100, sizes.backlog_probe // rounds)
    for _ in range(rounds):  # interleaved, so drift hits both alike
        for s in (empty, full):
            m = ctx.meter()
            m.start()
            lat[s] += await paced(per, RATE, lambda i, s=s: ctx.grpc_c.publish(s, PAYLOAD))
            for k, us in m.stop(per)["us_ev"].items():
                cpu[s][k] = cpu[s].get(k, 0.0) + us / rounds
    for key, s in (("backlog.empty", empty), ("backlog.full", full)):
        ctx.res.put(key, {**summary(lat[s]), "cpu_us_ev": {k: round(v, 1) for k, v in cpu[s].items()}})
    await r.delete(full)


async def bench_workers(ctx: Ctx) -> None:
    """Scenario 6: scenario 4's gRPC and HTTP parts and scenario 1's gRPC part against a second
    sidecar with FRIDAY_WORKERS=2, next to the one-worker figures of this run (measured here
    first if the run did not have them). The one-worker sidecar stays up, idle."""
    if not workers_available():
        ctx.res.put("workers", "FRIDAY_WORKERS is not available in this build")
        return
    print("6. FRIDAY_WORKERS=1 vs 2: concurrent gRPC and HTTP publishers, gRPC batch publish", flush=True)
    http1 = RawHttp(ctx.sidecar.http_url, KEY, size=PUBLISHERS)
    try:
        ops1 = publish_ops(ctx, ctx.grpc_c, http1, uuid.uuid4().hex[:6])
        for name in ("grpc", "http"):
            if f"concurrent.{name}" not in ctx.res.values:
                ctx.res.put(f"concurrent.{name}", await concurrent_phase(ctx, ctx.sidecar, ops1[name]))
    finally:
        await http1.close()
    if "batch.grpc" not in ctx.res.values:
        ctx.res.put("batch.grpc", await batch_grpc(ctx, ctx.grpc_c, ctx.sidecar, uuid.uuid4().hex[:6]))
    sidecar2 = start_sidecar(ctx.work / "sidecar-2-workers", ctx.redis_url, False, workers=2)
    print(f"  sidecar with FRIDAY_WORKERS=2: pids {sidecar2.pids()} (supervisor {sidecar2.proc.pid})", flush=True)
    grpc2 = FridayClient(sidecar2.grpc_target, api_key=KEY)
    http2 = RawHttp(sidecar2.http_url, KEY, size=PUBLISHERS)
    try:
        await grpc2.publish("bench.warm", PAYLOAD)
        ops = publish_ops(ctx, grpc2, http2, uuid.uuid4().hex[:6])
        ctx.res.put("workers2.concurrent.grpc", await concurrent_phase(ctx, sidecar2, ops["grpc"]))
        ctx.res.put("workers2.concurrent.http", await concurrent_phase(ctx, sidecar2, ops["http"]))
        ctx.res.put("workers2.batch.grpc", await batch_grpc(ctx, grpc2, sidecar2, uuid.uuid4().hex[:6]))
        ctx.res.put("workers2.rss_peak_mb", round(sidecar2.vm_hwm_mb(), 1))
    finally:
        await http2.close()
        await grpc2.close()
        sidecar2.stop()


# ---------------------------------------------------------------------------- report


def fmt(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"


PHASE_ROWS: list[tuple[str, str, str | None]] = [  # (heading or key, label, ratio base key)
    ("#", "1. batch publish, 500 per batch, one batch at a time", None),
    ("batch.direct", "direct redis-py pipelined XADD", "batch.direct"),
    ("batch.grpc", "gRPC FridayClient.publish_batch(Event...)", "batch.direct"),
    ("batch.http", "HTTP POST /events/publish/batch", "batch.direct"),
    ("#", "2. consume + ack (backlog filled directly)", None),
    ("consume.direct_decode", "(a) direct XREADGROUP 500+decode_event+XACK", "consume.direct_decode"),
    ("consume.direct_raw", "(b) direct XREADGROUP 500+XACK, no decode", "consume.direct_decode"),
    ("consume.grpc_readme", "(c) gRPC README loop, await ack, mif=10", "consume.direct_decode"),
    ("consume.grpc_unawaited", "(d) gRPC acks not awaited, mif=500", "consume.direct_decode"),
    ("consume.http", "(e) HTTP read 500 + ack", "consume.direct_decode"),
    ("#", f"3. single-event publish at {RATE} ev/s, open loop (p50/p90/p99 ms)", None),
    ("latency.direct", "direct XADD", None),
    ("latency.grpc", "gRPC FridayClient.publish", None),
    ("latency.http", "HTTP POST /events/publish", None),
    ("@sweep", "", None),
    ("#", f"4. {PUBLISHERS} concurrent single-event publishers", None),
    ("concurrent.direct", f"direct XADD, {PUBLISHERS} tasks, one redis-py client", "concurrent.direct"),
    ("concurrent.grpc", f"gRPC, {PUBLISHERS} tasks, one FridayClient", "concurrent.direct"),
    ("concurrent.http", f"HTTP, {PUBLISHERS} keep-alive connections", "concurrent.direct"),
    ("#", "6. FRIDAY_WORKERS=2 (ratio: to 1 worker above)", None),
    ("workers2.concurrent.grpc", f"gRPC, {PUBLISHERS} tasks, one FridayClient", "concurrent.grpc"),
    ("workers2.concurrent.http", f"HTTP, {PUBLISHERS} keep-alive connections", "concurrent.http"),
    ("workers2.batch.grpc", "gRPC publish_batch, 500 per batch", "batch.grpc"),
]


def phase_table(v: dict[str, Any]) -> list[str]:
    hdr = (f"{'scenario':<46}{'ev/s':>9}{'ratio':>7}{'p50':>8}{'p90':>8}{'p99':>8}   "
           f"{'client':>8}{'sidecar':>9}{'redis':>8}{'total':>9}")
    lines = [hdr, f"{'':<46}{'':>9}{'':>7}{'(latency ms)':>24}   {'(CPU µs per event, user+sys)':>34}", "-" * len(hdr)]
    heading = None
    for key, label, base in PHASE_ROWS:
        if key == "#":
            heading = label
            continue
        if key == "@sweep":
            sw = sweep_lines(v)
            if sw:
                lines.append(f"3b. single-event publish rate sweep: the last rate with p99 <= {SWEEP_P99_MS:.0f} ms, "
                             "the first above it (or achieving < 90% of it) twice in a row")
                lines.extend(sw)
            continue
        ph = v.get(key)
        if not isinstance(ph, dict):
            continue
        if heading:
            lines.append(heading)
            heading = None
        b = v.get(base) if base else None
        ratio = f"{ph['ev_s'] / b['ev_s']:.2f}x" if isinstance(b, dict) and b.get("ev_s") else ""
        cpu = ph["us_ev"]
        direct = key.split(".")[-1].startswith("direct")
        lines.append(f"  {label:<44}{ph['ev_s']:>9,}{ratio:>7}{fmt(ph.get('p50'), 2):>8}{fmt(ph.get('p90'), 2):>8}"
                     f"{fmt(ph.get('p99'), 2):>8}   {fmt(cpu['client']):>8}"
                     f"{('(' + fmt(cpu['sidecar']) + ')') if direct else fmt(cpu['sidecar']):>9}{fmt(cpu['redis']):>8}"
                     f"{fmt(cpu['total']):>9}")
        procs = ph.get("sidecar_processes_us_ev")
        if procs and not direct:
            lines.append(f"  {'':<44}sidecar per process (supervisor first): " +
                         " + ".join(f"{x}" for x in procs.values()) + " µs/ev")
    return lines


def sweep_lines(v: dict[str, Any]) -> list[str]:
    lines = []
    for name in ("direct", "grpc", "http"):
        s = v.get(f"sweep.{name}")
        if not isinstance(s, dict):
            continue
        lo, hi = s["last_under"], s["first_over"]
        a = (f"last under: {lo['rate']:,} ev/s (p99 {lo['p99']:.2f} ms, sidecar {lo.get('sidecar_us_ev', '-')} µs/ev)"
             if lo else "none (the lowest rate already passed)")
        b = (f"first over: {hi['rate']:,} ev/s (p99 {hi['p99']:.2f} ms, {hi['achieved']:,} achieved: {hi['why']})"
             if hi else f"none up to {SWEEP_RATES[-1]:,} ev/s")
        lines.append(f"  {name:<7} {a}; {b}")
    return lines


def sweep_value(v: dict[str, Any], name: str) -> str | None:
    s = v.get(f"sweep.{name}")
    if not isinstance(s, dict):
        return None
    lo, hi = s["last_under"], s["first_over"]
    if hi is None:
        return f"> {SWEEP_RATES[-1]:,} ev/s"
    return f"{lo['rate'] if lo else 0:,}..{hi['rate']:,} ev/s" + ("" if hi["why"].startswith("p99") else " (rate)")


def targets(v: dict[str, Any]) -> list[tuple[str, str | None, str, bool | None]]:
    """(target, measured or None if not run, goal, met: True/False, None = reported only)."""
    t: list[tuple[str, str | None, str, bool | None]] = []

    def ph(key: str) -> dict[str, Any] | None:
        x = v.get(key)
        return x if isinstance(x, dict) and "ev_s" in x else None

    def ratio(a: str, b: str) -> float | None:
        pa, pb = ph(a), ph(b)
        return pa["ev_s"] / pb["ev_s"] if pa and pb else None

    def us(key: str) -> float | None:
        p = ph(key)
        return p["us_ev"]["sidecar"] if p else None

    def row(name: str, value: float | None, text: str, goal: str, ok: Callable[[float], bool] | None) -> None:
        t.append((name, None if value is None else text.format(value), goal, None if value is None or ok is None else ok(value)))

    row("1 batch: gRPC / direct pipelined XADD", ratio("batch.grpc", "batch.direct"), "{:.2f}x", "≥ 0.8x", lambda x: x >= 0.8)
    row("1 batch: sidecar CPU, gRPC", us("batch.grpc"), "{:.1f} µs/ev", "≤ 20 µs/ev", lambda x: x <= 20)
    row("1 batch: HTTP / direct", ratio("batch.http", "batch.direct"), "{:.2f}x", "reported", None)
    row("1 batch: sidecar CPU, HTTP", us("batch.http"), "{:.1f} µs/ev", "reported", None)
    row("2 consume: (c) README loop / (a) direct same work", ratio("consume.grpc_readme", "consume.direct_decode"),
        "{:.2f}x", "≥ 0.8x", lambda x: x >= 0.8)
    row("2 consume: (c) README loop / (b) direct raw", ratio("consume.grpc_readme", "consume.direct_raw"),
        "{:.2f}x", "reported", None)
    row("2 consume: sidecar CPU, (c) README loop", us("consume.grpc_readme"), "{:.1f} µs/ev", "≤ 20 µs/ev", lambda x: x <= 20)
    row("2 consume: (d) acks not awaited / (a)", ratio("consume.grpc_unawaited", "consume.direct_decode"),
        "{:.2f}x", "reported", None)
    row("2 consume: sidecar CPU, (d) acks not awaited", us("consume.grpc_unawaited"), "{:.1f} µs/ev", "≤ 20 µs/ev",
        lambda x: x <= 20)
    row("2 consume: (e) HTTP / (a)", ratio("consume.http", "consume.direct_decode"), "{:.2f}x", "reported", None)
    ld = ph("latency.direct")
    for door, p90, p99 in (("grpc", 0.5, 1.5), ("http", 1.0, 3.0)):
        lx = ph(f"latency.{door}")
        for q, goal in (("p90", p90), ("p99", p99)):
            d = lx[q] - ld[q] if lx and ld else None
            row(f"3 publish @{RATE}/s: {door} overhead {q}", d, "{:+.2f} ms", f"≤ +{goal:g} ms", lambda x, g=goal: x <= g)
    for door in ("grpc", "http"):
        s = sweep_value(v, door)
        t.append((f"3 {door}: rate where p99 passes {SWEEP_P99_MS:.0f} ms", s, "reported", None))
    cd = ph("concurrent.direct")
    for door in ("direct", "grpc", "http"):
        c = ph(f"concurrent.{door}")
        text = None
        if c:
            rel = f" ({c['ev_s'] / cd['ev_s']:.2f}x)" if cd and door != "direct" else ""
            text = (f"{c['ev_s']:,} ev/s{rel}, p99 {c['p99']:.1f} ms"
                    + ("" if door == "direct" else f", sidecar {c['us_ev']['sidecar']:.0f} µs/ev"))
        t.append((f"4 {PUBLISHERS} publishers: {door}", text, "reported", None))
    peak = v.get("rss.peak_concurrent_mb")
    row("5 sidecar peak RSS under scenario 4", peak, "{:.1f} MB", "≤ 80 MB", lambda x: x <= 80)
    idle = v.get("rss.idle_mb")
    t.append(("5 sidecar RSS idle after start", None if idle is None else f"{idle:.1f} MB", "reported", None))
    if isinstance(v.get("workers"), str):
        t.append(("6 FRIDAY_WORKERS", v["workers"], "reported", None))
    else:
        for key, label in (("concurrent.grpc", "gRPC x50"), ("concurrent.http", "HTTP x50"), ("batch.grpc", "gRPC batch")):
            a, b = ph(key), ph(f"workers2.{key}")
            text = (f"{a['ev_s']:,} -> {b['ev_s']:,} ev/s ({b['ev_s'] / a['ev_s']:.2f}x), "
                    f"sidecar {a['us_ev']['sidecar']:.0f} -> {b['us_ev']['sidecar']:.0f} µs/ev") if a and b else None
            t.append((f"6 workers 1 -> 2: {label}", text, "reported", None))
    bf, be = v.get("backlog.full"), v.get("backlog.empty")
    row("backlog: gRPC p99, full vs empty", (bf["p99"] / be["p99"] - 1) * 100 if bf and be else None,
        "{:+.0f}%" + (f" ({bf['p99']:.2f} vs {be['p99']:.2f} ms)" if bf and be else ""), "within +10%", lambda x: x <= 10)
    return t


def report(res: Results, sizes: Sizes, args: argparse.Namespace) -> str:
    import redis.utils

    v = res.values
    lines: list[str] = []
    add = lines.append
    add("")
    add(f"Friday sidecar benchmark, issue 11 {'(--quick) ' if args.quick else ''}— Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, redis-py {'with' if redis.utils.HIREDIS_AVAILABLE else 'without'} hiredis, "
        f"load average {os.getloadavg()[0]:.1f}{', sidecar under cProfile' if args.profile else ''}")
    add(f"tree {ROOT}; client {v.get('client_module')}; sidecar {v.get('sidecar_module')}")
    add("")
    lines += phase_table(v)
    add("")
    add(f"{'target (issue 11)':<50}{'measured':>52}   {'goal':<12} result")
    add("-" * 124)
    for name, measured, goal, ok in targets(v):
        result = "not run" if measured is None else ("reported" if ok is None else ("MET" if ok else "MISSED"))
        add(f"{name:<50}{measured or '-':>52}   {'-' if goal == 'reported' else goal:<12} {result}")
    add("")
    gcp = v.get("sidecar_gc_pauses_over_1ms")
    if gcp:
        add("sidecar GC pauses > 1 ms over the run: " + ", ".join(
            f"{g} {x['count']} (max {x['max_ms']} ms)" for g, x in gcp.items()))
    add("Notes: one Python client process drives every scenario; CPU per event is user+sys over exactly the measured")
    add("  phase (client: os.times(); sidecar: all its processes; redis-server: /proc/PID/stat), divided by its events.")
    add(f"  One clock tick is 1/{TICK} s: a phase's CPU figure is exact to 1 tick / its events. (x) in the sidecar column")
    add("  of direct rows: the idle sidecar's background work over that phase, for scale.")
    add("  Direct publishes XADD the sidecar's own entry fields (encoded once, not per event); the sidecar validates and")
    add("  encodes every event. Consume backlogs are filled directly in the sidecar's wire format; (a) decodes every")
    add("  entry with the sidecar's codec.decode_event. (c) is the README's agent loop (examples/agent.py) without the")
    add("  publish inside it: `async for event in bus.subscribe(s, g, c, max_in_flight=10): await event.ack()`.")
    add("  Latency: open loop, the p50/p90/p99 of each call; the ev/s column is the achieved rate. Scenario 4: each task")
    add("  awaits one publish after another; p99 is the call latency. RSS: VmHWM summed over the sidecar's processes,")
    add("  reset before scenario 4" + ("" if v.get("rss.peak_concurrent_reset", True) else " (reset refused: peak since start)")
        + (". Workers: the per-process line shows how the load spread;" if "workers2.batch.grpc" in v else "."))
    if "workers2.batch.grpc" in v:
        add("  one FridayClient is one gRPC connection, which SO_REUSEPORT hands to one worker.")
    add("  Sweep: direct is this client's own limit (redis-py, one process), not a target.")
    return "\n".join(lines)


def print_profile(path: Path, top: int = 25) -> None:
    if not path.exists():
        print(f"(no profile written at {path})")
        return
    print(f"\nSidecar profile (top {top} by internal time; {path}):")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats("friday_bus|grpc/aio|redis/asyncio/client", top)


async def main_async(args: argparse.Namespace) -> int:
    sizes = Sizes.pick(args.quick)
    if args.backlog is not None:
        sizes.backlog = args.backlog
    phases = [p.strip() for p in args.only.split(",") if p.strip()] if args.only else list(SCENARIOS)
    unknown = set(phases) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"--only: unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    work = Path(tempfile.mkdtemp(prefix="friday-bench-"))
    redis_proc, redis_url = start_redis(work)
    sidecar = None
    res = Results()
    t_start = time.monotonic()
    try:
        sidecar = start_sidecar(work / "sidecar", redis_url, args.profile)
        which = sidecar.log.read_text(errors="replace").splitlines()[0]
        print(f"redis {redis_url} (pid {redis_proc.pid}), sidecar pid {sidecar.proc.pid} "
              f"(gRPC {sidecar.grpc_target}, HTTP {sidecar.http_url})\n{which}\n"
              f"bench client: {_client_module.__name__} from {_client_module.__file__}", flush=True)
        res.values["client_module"] = _client_module.__file__
        res.values["sidecar_module"] = which.rsplit(" ", 1)[-1]
        r = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=10_000)
        # open loop past what the client can do: wait for one of PUBLISH_POOL connections rather than open thousands
        r_pub = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            redis_url, decode_responses=True, max_connections=PUBLISH_POOL, timeout=None))
        grpc_c = FridayClient(sidecar.grpc_target, api_key=KEY)
        http = RawHttp(sidecar.http_url, KEY)
        ctx = Ctx(sizes, res, r, redis_proc.pid, sidecar, grpc_c, http, work, redis_url, r_pub)
        try:
            await grpc_c.publish("bench.warm", PAYLOAD)  # connections up before any measured phase
            await http.post("/api/v1/events/publish", {"stream": "bench.warm", "payload": PAYLOAD})
            res.put("rss.idle_mb", round(sidecar.vm_rss_mb(), 1))
            res.put("rss.idle_peak_mb", round(sidecar.vm_hwm_mb(), 1))
            for name in phases:
                if name == "workers":
                    continue
                await {"batch": bench_batch, "consume": bench_consume, "latency": bench_latency, "sweep": bench_sweep,
                       "concurrent": bench_concurrent, "backlog": bench_backlog}[name](ctx)
            res.put("rss.end_mb", round(sidecar.vm_hwm_mb(), 1))
            if "workers" in phases:  # last, whatever the order asked
                await bench_workers(ctx)
        finally:
            await http.close()
            await grpc_c.close()
            await r.aclose()
            await r_pub.aclose()
    finally:
        if sidecar is not None:
            sidecar.stop()
        redis_proc.terminate()
        redis_proc.wait(10)
    gc_file = work / "sidecar" / "gc-pauses.txt"
    if gc_file.exists():
        pauses = ast.literal_eval(gc_file.read_text() or "[]")
        by_gen = {g: sorted(ms for gg, ms in pauses if gg == g) for g in (0, 1, 2)}
        res.put("sidecar_gc_pauses_over_1ms", {f"gen{g}": {"count": len(v), "max_ms": max(v) if v else 0}
                                               for g, v in by_gen.items()})
    res.values["wall_s"] = round(time.monotonic() - t_start, 1)
    text = report(res, sizes, args) + f"\n(run took {res.values['wall_s']:.0f} s)"
    print(text)
    if not args.only:
        out = ROOT / "bench-results"
        out.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (out / f"bench-{stamp}.json").write_text(json.dumps({"quick": args.quick, "sizes": sizes.__dict__, **res.values}, indent=2))
        (out / f"bench-{stamp}.txt").write_text(text + "\n")
        print(f"results: bench-results/bench-{stamp}.json")
    if args.profile and sidecar is not None and sidecar.profile is not None:
        print_profile(sidecar.profile)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="scaled-down sizes (~3 min)")
    ap.add_argument("--profile", action="store_true", help="run the sidecar under cProfile and print its hot spots")
    ap.add_argument("--only", default="", help=f"comma-separated scenarios to run: {','.join(SCENARIOS)}")
    ap.add_argument("--backlog", type=int, default=None, help="backlog size (default 1,000,000; 100,000 with --quick)")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
