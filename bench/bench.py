#!/usr/bin/env python3
"""Friday sidecar benchmark: the direct redis-py baseline and the sidecar, in one go, on one Redis.

    python bench/bench.py            # full sizes (a few minutes; needs ~1 GB free RAM for the backlog)
    python bench/bench.py --quick    # scaled down (~30 s)
    python bench/bench.py --profile  # also profile the sidecar (cProfile) and print its top functions

It starts its own redis-server on a free port (AOF everysec, no rewrites during the run) and
`friday serve` as a subprocess (auth on, log level WARNING), then measures:

* publish latency p50/p90/p99 at a fixed 1000 events/s (open loop): direct XADD, gRPC, HTTP;
* batch publish throughput: direct pipelined XADD vs PublishBatch / POST publish/batch;
* consume-with-ack throughput: direct XREADGROUP+XACK loop vs gRPC Subscribe (acks on the
  stream) vs HTTP read+ack;
* the sidecar's peak RSS (VmHWM of /proc/<pid>/status);
* gRPC publish p99 on a stream holding a 1,000,000-entry unconsumed backlog vs an empty one.

The table prints each measured value next to its target; results also go to bench-results/.
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

from friday_bus.client import Event, FridayClient
from friday_bus.core.codec import encode_event
from friday_bus.core.models import EventMeta

PAYLOAD = {"email_id": "msg-0001", "account": "friday@example.com", "has_attachments": True, "size": 48213,
           "score": 0.87, "labels": ["inbox", "work"]}
RATE = 1000
BATCH = 500
KEY = "bench-" + uuid.uuid4().hex


@dataclass
class Sizes:
    latency_events: int
    batch_events: int
    consume_events: int
    backlog: int
    backlog_probe: int

    @classmethod
    def pick(cls, quick: bool) -> Sizes:
        if quick:
            return cls(latency_events=2_000, batch_events=20_000, consume_events=20_000, backlog=100_000, backlog_probe=2_000)
        return cls(latency_events=10_000, batch_events=100_000, consume_events=100_000, backlog=1_000_000, backlog_probe=10_000)


@dataclass
class Results:
    values: dict[str, Any] = field(default_factory=dict)

    def put(self, key: str, value: Any) -> None:
        self.values[key] = value
        print(f"  {key}: {value}", flush=True)


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

    def vm_hwm_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

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


def start_sidecar(workdir: Path, redis_url: str, profile: bool) -> Sidecar:
    topology = workdir / "topology.json"
    topology.write_text(json.dumps({
        "streams": {"bench.backlog": ["g"], "bench.empty": ["g"]},
        "channels": ["bench.info"],
        "allow_unknown_streams": True,
    }))
    http_port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRIDAY_")}
    env.update({
        "FRIDAY_REDIS_URL": redis_url,
        "FRIDAY_TOPOLOGY_FILE": str(topology),
        "FRIDAY_HTTP_HOST": "127.0.0.1", "FRIDAY_HTTP_PORT": str(http_port),
        "FRIDAY_GRPC_HOST": "127.0.0.1", "FRIDAY_GRPC_PORT": str(grpc_port),
        "FRIDAY_API_KEYS": KEY,
        "FRIDAY_LOG_LEVEL": "WARNING",
        "FRIDAY_DATA_DIR": str(workdir / "data"),
        "BENCH_GC_OUT": str(workdir / "gc-pauses.txt"),
    })
    # `friday serve`, started through Python so that --profile can wrap it in cProfile
    script = workdir / "bench_sidecar.py"
    script.write_text(GC_PROBE + "from friday_bus.server import run\nfrom friday_bus.core import load_settings\nrun(load_settings())\n")
    prof = workdir / "sidecar.prof" if profile else None
    cmd = [sys.executable, *(["-m", "cProfile", "-o", str(prof)] if prof else []), str(script)]
    log = workdir / "sidecar.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_port(http_port, proc, "the sidecar (HTTP)", log)
    wait_port(grpc_port, proc, "the sidecar (gRPC)", log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return Sidecar(proc, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", log, prof)


# ---------------------------------------------------------------------------- a lean HTTP client


class RawHttp:
    """A minimal keep-alive HTTP/1.1 JSON client (a pool of connections). httpx costs about a
    millisecond of client CPU per request, which would measure the client, not the sidecar."""

    def __init__(self, url: str, key: str, size: int = 64) -> None:
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


async def paced(n: int, rate: float, op: Callable[[int], Awaitable[Any]]) -> list[float]:
    """Open loop: start op(i) at start + i/rate whatever the previous ones do; latencies in ms."""
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
    return lat


def summary(lat: list[float]) -> dict[str, float]:
    return {"p50": round(pct(lat, 50), 3), "p90": round(pct(lat, 90), 3), "p99": round(pct(lat, 99), 3)}


async def throughput(total: int, concurrency: int, step: Callable[[int], Awaitable[int]]) -> float:
    """Events/s for ``total`` events done by ``concurrency`` workers calling ``step(worker)``
    (which returns how many events it handled)."""
    remaining = total

    async def worker(w: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= await step(w)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return total / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------- scenarios


async def bench_latency(sizes: Sizes, r: aioredis.Redis, grpc_c: FridayClient, http: RawHttp,
                        res: Results) -> None:
    print(f"publish latency at {RATE} ev/s ({sizes.latency_events} events each)", flush=True)
    fields = seed_fields(PAYLOAD)
    s_direct, s_grpc, s_http = (f"bench.lat.{k}.{uuid.uuid4().hex[:6]}" for k in ("direct", "grpc", "http"))

    async def direct(i: int) -> None:
        await r.xadd(s_direct, fields)

    async def via_grpc(i: int) -> None:
        await grpc_c.publish(s_grpc, PAYLOAD)

    async def via_http(i: int) -> None:
        status, body = await http.post("/api/v1/events/publish", {"stream": s_http, "payload": PAYLOAD})
        if status != 200:
            raise SystemExit(f"HTTP publish failed: {status} {body}")

    for name, op in (("direct", direct), ("grpc", via_grpc), ("http", via_http)):
        await paced(200, RATE, op)  # warm-up
        res.put(f"latency.{name}", summary(await paced(sizes.latency_events, RATE, op)))


async def bench_batch(sizes: Sizes, r: aioredis.Redis, grpc_c: FridayClient, http: RawHttp, res: Results) -> None:
    print(f"batch publish ({sizes.batch_events} events, batches of {BATCH}, one batch at a time)", flush=True)
    fields = seed_fields(PAYLOAD)
    tag = uuid.uuid4().hex[:6]

    async def direct(w: int) -> int:
        async with r.pipeline(transaction=False) as p:
            for _ in range(BATCH):
                p.xadd(f"bench.batch.direct.{tag}", fields)
            await p.execute()
        return BATCH

    events = [Event(f"bench.batch.grpc.{tag}", PAYLOAD) for _ in range(BATCH)]

    async def via_grpc(w: int) -> int:
        await grpc_c.publish_batch(events)
        return BATCH

    body = {"events": [{"stream": f"bench.batch.http.{tag}", "payload": PAYLOAD} for _ in range(BATCH)]}

    async def via_http(w: int) -> int:
        status, out = await http.post("/api/v1/events/publish/batch", body)
        if status != 200:
            raise SystemExit(f"HTTP batch failed: {status} {out}")
        return BATCH

    for name, step in (("direct", direct), ("grpc", via_grpc), ("http", via_http)):
        await throughput(BATCH * 4, 1, step)  # warm-up
        res.put(f"batch.{name}", round(await throughput(sizes.batch_events, 1, step)))


def friday_fields(payload: dict[str, Any]) -> dict[str, str]:
    """Entry fields exactly as the sidecar writes them (its codec), for fills done directly."""
    return encode_event(payload, EventMeta(), int(time.time() * 1000))


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


async def fill(r: aioredis.Redis, stream: str, n: int, chunk: int = 10_000) -> None:
    """Fill directly in the sidecar's format (fast, and keeps the sidecar's profile clean)."""
    fields = friday_fields(PAYLOAD)
    for done in range(0, n, chunk):
        async with r.pipeline(transaction=False) as p:
            for _ in range(min(chunk, n - done)):
                p.xadd(stream, fields)
            await p.execute()


async def bench_consume(sizes: Sizes, r: aioredis.Redis, grpc_c: FridayClient, http: RawHttp,
                        res: Results) -> None:
    n = sizes.consume_events
    print(f"consume with ack ({n} events, {BATCH} in flight)", flush=True)
    tag = uuid.uuid4().hex[:6]
    streams = {k: f"bench.consume.{k}.{tag}" for k in ("direct", "grpc", "http")}
    for s in streams.values():
        await r.xgroup_create(s, "g", "0", mkstream=True)
        await fill(r, s, n)

    async def direct() -> float:
        s, got = streams["direct"], 0
        t0 = time.perf_counter()
        while got < n:
            reply = await r.xreadgroup("g", "c1", {s: ">"}, count=BATCH, block=1000)
            if not reply:
                continue
            ids = [eid for eid, _ in reply[0][1]]
            await r.xack(s, "g", *ids)
            got += len(ids)
        return n / (time.perf_counter() - t0)

    async def via_grpc() -> float:
        t0 = time.perf_counter()
        await grpc_consume_ack(grpc_c, streams["grpc"], n)
        return n / (time.perf_counter() - t0)

    async def via_http() -> float:
        t0 = time.perf_counter()
        await http_consume_ack(http, streams["http"], n)
        return n / (time.perf_counter() - t0)

    for name, fn in (("direct", direct), ("grpc", via_grpc), ("http", via_http)):
        res.put(f"consume.{name}", round(await fn()))
    pending = {k: (await r.xpending(s, "g"))["pending"] for k, s in streams.items()}
    assert all(v == 0 for v in pending.values()), f"un-acked entries left: {pending}"


async def bench_backlog(sizes: Sizes, r: aioredis.Redis, grpc_c: FridayClient, res: Results) -> None:
    print(f"publish p99 with a {sizes.backlog:,}-entry backlog vs an empty stream", flush=True)
    full, empty = "bench.backlog", "bench.empty"
    t0 = time.perf_counter()
    await fill(r, full, sizes.backlog)
    print(f"  (filled {await r.xlen(full):,} entries in {time.perf_counter() - t0:.1f} s; "
          f"group lag {(await r.xinfo_groups(full))[0].get('lag')})", flush=True)
    lat: dict[str, list[float]] = {full: [], empty: []}
    rounds = 10
    per = max(100, sizes.backlog_probe // rounds)
    for _ in range(rounds):  # interleaved, so drift hits both alike
        for s in (empty, full):
            lat[s] += await paced(per, RATE, lambda i, s=s: grpc_c.publish(s, PAYLOAD))
    res.put("backlog.empty", summary(lat[empty]))
    res.put("backlog.full", summary(lat[full]))


# ---------------------------------------------------------------------------- report


def fmt(v: float, unit: str = "") -> str:
    if math.isnan(v):
        return "n/a"
    if unit == "ev/s":
        return f"{v:,.0f}"
    return f"{v:.3f}"


def report(res: Results, sizes: Sizes, quick: bool) -> str:
    v = res.values
    lines = []
    add = lines.append
    add("")
    import redis.utils

    add(f"Friday sidecar benchmark {'(--quick) ' if quick else ''}— Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"redis-py {'with' if redis.utils.HIREDIS_AVAILABLE else 'without'} hiredis, load average {os.getloadavg()[0]:.1f}")
    add("")
    hdr = f"{'measure':<34}{'direct':>12}{'gRPC':>12}{'ratio':>8}{'HTTP':>12}{'ratio':>8}   target"
    add(hdr)
    add("-" * (len(hdr) + 40))
    ld, lg, lh = v["latency.direct"], v["latency.grpc"], v["latency.http"]
    for q, target in (("p50", ""), ("p90", "P1 gRPC ≤ direct + 0.5 ms"), ("p99", "P1 gRPC ≤ direct + 1.5 ms")):
        add(f"{'publish ' + q + ' ms @1000 ev/s':<34}{fmt(ld[q]):>12}{fmt(lg[q]):>12}{lg[q] / ld[q]:>7.1f}x"
            f"{fmt(lh[q]):>12}{lh[q] / ld[q]:>7.1f}x   {target}")
    for key, label, target in (("batch", f"batch publish ev/s ({BATCH}/batch)", "P2 ≥ 0.8x direct pipelined"),
                               ("consume", f"consume+ack ev/s ({BATCH} in flight)", "P3 ≥ 0.8x direct")):
        d, g, h = v[f"{key}.direct"], v[f"{key}.grpc"], v[f"{key}.http"]
        add(f"{label:<34}{fmt(d, 'ev/s'):>12}{fmt(g, 'ev/s'):>12}{g / d:>7.2f}x{fmt(h, 'ev/s'):>12}{h / d:>7.2f}x   {target}")
    add("")
    p1 = (lg["p90"] - ld["p90"], lg["p99"] - ld["p99"])
    checks = [
        ("P1 gRPC publish overhead p90", f"+{p1[0]:.3f} ms", "≤ +0.5 ms", p1[0] <= 0.5),
        ("P1 gRPC publish overhead p99", f"+{p1[1]:.3f} ms", "≤ +1.5 ms", p1[1] <= 1.5),
        ("P2 gRPC batch vs pipelined XADD", f"{v['batch.grpc'] / v['batch.direct']:.2f}x", "≥ 0.8x",
         v["batch.grpc"] / v["batch.direct"] >= 0.8),
        ("P3 gRPC consume+ack vs direct", f"{v['consume.grpc'] / v['consume.direct']:.2f}x", "≥ 0.8x",
         v["consume.grpc"] / v["consume.direct"] >= 0.8),
        ("P5 sidecar peak RSS at 1000 ev/s", f"{v['rss.after_latency_mb']:.1f} MB", "≤ 80 MB", v["rss.after_latency_mb"] <= 80),
        ("    (idle after start / whole run)", f"{v['rss.idle_mb']:.1f} / {v['rss.end_mb']:.1f} MB", "", None),
        (f"P6 gRPC p99, {sizes.backlog:,} backlog vs empty",
         (f"{v['backlog.full']['p99']:.3f} vs {v['backlog.empty']['p99']:.3f} ms "
          f"({(v['backlog.full']['p99'] / v['backlog.empty']['p99'] - 1) * 100:+.0f}%)"), "within 10%",
         v["backlog.full"]["p99"] <= 1.10 * v["backlog.empty"]["p99"]),
    ]
    add(f"{'target':<40}{'measured':>32}   {'goal':<12} result")
    add("-" * 96)
    for name, measured, goal, ok in checks:
        add(f"{name:<40}{measured:>32}   {goal:<12} {'' if ok is None else ('PASS' if ok else 'MISS')}")
    add("")
    gcp = v.get("sidecar_gc_pauses_over_1ms")
    if gcp:
        add("sidecar GC pauses > 1 ms over the run: " + ", ".join(
            f"{g} {x['count']} (max {x['max_ms']} ms)" for g, x in gcp.items()) + "  <- the publish latency tail")
    add("gRPC publish = the Python client's publish() (one PublishStream call); HTTP = POST /api/v1/events/publish over "
        "keep-alive connections; direct = redis-py XADD. One Python client process drives all three, open loop.")
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
    work = Path(tempfile.mkdtemp(prefix="friday-bench-"))
    redis_proc, redis_url = start_redis(work)
    sidecar = None
    res = Results()
    try:
        sidecar = start_sidecar(work, redis_url, args.profile)
        print(f"redis {redis_url}, sidecar pid {sidecar.proc.pid} (gRPC {sidecar.grpc_target}, HTTP {sidecar.http_url})")
        r = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=10_000)
        grpc_c = FridayClient(sidecar.grpc_target, api_key=KEY)
        http = RawHttp(sidecar.http_url, KEY)
        phases = set(args.only.split(",")) if args.only else {"latency", "batch", "consume", "backlog"}
        try:
            res.put("rss.idle_mb", round(sidecar.vm_hwm_mb(), 1))
            if "latency" in phases:
                await bench_latency(sizes, r, grpc_c, http, res)
                res.put("rss.after_latency_mb", round(sidecar.vm_hwm_mb(), 1))
            if "batch" in phases:
                await bench_batch(sizes, r, grpc_c, http, res)
            if "consume" in phases:
                await bench_consume(sizes, r, grpc_c, http, res)
            if "backlog" in phases:
                await bench_backlog(sizes, r, grpc_c, res)
            res.put("rss.end_mb", round(sidecar.vm_hwm_mb(), 1))
        finally:
            await http.close()
            await grpc_c.close()
            await r.aclose()
    finally:
        if sidecar is not None:
            sidecar.stop()
        redis_proc.terminate()
        redis_proc.wait(10)
    gc_file = work / "gc-pauses.txt"
    if gc_file.exists():
        pauses = ast.literal_eval(gc_file.read_text() or "[]")
        by_gen = {g: sorted(ms for gg, ms in pauses if gg == g) for g in (0, 1, 2)}
        res.put("sidecar_gc_pauses_over_1ms", {f"gen{g}": {"count": len(v), "max_ms": max(v) if v else 0}
                                               for g, v in by_gen.items()})
    if args.only:
        print(json.dumps(res.values, indent=2))
        if args.profile and sidecar is not None and sidecar.profile is not None:
            print_profile(sidecar.profile)
        return 0
    text = report(res, sizes, args.quick)
    print(text)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"bench-{stamp}.json").write_text(json.dumps({"quick": args.quick, "sizes": sizes.__dict__, **res.values}, indent=2))
    (out / f"bench-{stamp}.txt").write_text(text + "\n")
    if args.profile and sidecar is not None and sidecar.profile is not None:
        print_profile(sidecar.profile)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="scaled-down sizes (~30 s)")
    ap.add_argument("--profile", action="store_true", help="run the sidecar under cProfile and print its hot spots")
    ap.add_argument("--only", default="", help="comma-separated phases to run: latency,batch,consume,backlog (no table)")
    ap.add_argument("--backlog", type=int, default=None, help="backlog size for P6 (default 1,000,000; 100,000 with --quick)")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
