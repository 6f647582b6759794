#!/usr/bin/env python3
"""Publish and consume throughput through the sidecar on a 3-master Redis Cluster, next to one
Redis server (issue 8). Reported, not a target: on a 2-core machine the cluster's three
redis-servers, the sidecar and this client share the same cores.

    python bench/bench_cluster.py            # full sizes (~2-3 minutes)
    python bench/bench_cluster.py --quick    # scaled down (~40 s)
    python bench/bench_cluster.py --replicas 1   # a replica per master (as the tests run it)

The servers come from the test harness (tests/topologies/servers.py: a standalone redis-server
and ``Cluster(masters=3, replicas=0 by default)``, no persistence, free loopback ports); one
`friday serve` per topology (FRIDAY_REDIS_MODE=standalone / cluster, log level WARNING). The
phases and the clients are bench/bench.py's (imported): concurrent gRPC publishes, PublishBatch
and POST publish/batch of 500 events (spread over 6 streams: on the cluster two per shard, so
every batch is split by slot), consume-with-ack over gRPC Subscribe and HTTP read+ack (one
consumer per stream, in parallel) from a backlog filled directly.

Per phase and topology: events/s, the ratio cluster / single, and CPU microseconds per event of
each process (user + system time from /proc/PID/stat): the sidecar, the Redis server(s) (summed
over the cluster's nodes) and this client. Results go to bench-results/bench-cluster-*.{json,txt}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
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
from redis.asyncio.cluster import RedisCluster

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from friday_bus_client import Event

import bench
from tests.topologies.servers import Cluster, Standalone

STREAMS = 6
CONCURRENCY = 32
TICK = os.sysconf("SC_CLK_TCK")


async def concurrent(total: int, concurrency: int, step: Callable[[int], Awaitable[int]]) -> float:
    """Events/s for ``total`` events done by ``concurrency`` workers calling ``step(worker)``.
    (bench.throughput is right for one worker only: ``remaining -= await step(w)`` reads
    ``remaining`` before the await, so concurrent workers overwrite each other's counts.)"""
    left = total

    async def worker(w: int) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await step(w)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return total / (time.perf_counter() - t0)


def cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Topo:
    name: str
    env: dict[str, str]
    redis_pids: list[int]
    redis: Any  # redis.asyncio client (Redis or RedisCluster)
    streams: list[str]
    sidecar: bench.Sidecar | None = None
    results: dict[str, dict[str, float]] = field(default_factory=dict)


def start_sidecar(workdir: Path, env_extra: dict[str, str]) -> bench.Sidecar:
    """`friday serve` as bench.start_sidecar starts it, plus the topology's FRIDAY_* variables."""
    workdir.mkdir(parents=True, exist_ok=True)
    topology = workdir / "topology.json"
    topology.write_text(json.dumps({"streams": {}, "channels": [], "allow_unknown_streams": True}))
    http_port, grpc_port = bench.free_port(), bench.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRIDAY_")}
    env.update({
        "FRIDAY_TOPOLOGY_FILE": str(topology),
        "FRIDAY_HTTP_HOST": "127.0.0.1", "FRIDAY_HTTP_PORT": str(http_port),
        "FRIDAY_GRPC_HOST": "127.0.0.1", "FRIDAY_GRPC_PORT": str(grpc_port),
        "FRIDAY_API_KEYS": bench.KEY, "FRIDAY_LOG_LEVEL": "WARNING",
        "FRIDAY_DATA_DIR": str(workdir / "data"), **env_extra,
    })
    exe = Path(sys.executable).parent / "friday"
    log = workdir / "sidecar.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "serve"], cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
    bench.wait_port(http_port, proc, "the sidecar (HTTP)", log)
    bench.wait_port(grpc_port, proc, "the sidecar (gRPC)", log)
    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=2)
            if r.status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.send_signal(signal.SIGTERM)
            raise SystemExit(f"the sidecar was not ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return bench.Sidecar(proc, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", log, None)


async def measured(topo: Topo, phase: str, events: int, run: Callable[[], Awaitable[float]]) -> None:
    """Run one phase; record events/s and CPU µs per event of the sidecar, Redis and this client."""
    assert topo.sidecar is not None
    pids = {"sidecar": [topo.sidecar.proc.pid], "redis": topo.redis_pids, "client": [os.getpid()]}
    before = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
    rate = await run()
    after = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
    topo.results[phase] = {"ev_s": round(rate), **{f"{k}_us_ev": round((after[k] - before[k]) * 1e6 / events, 1)
                                                   for k in pids}}
    print(f"  {topo.name:10} {phase:22} {rate:10,.0f} ev/s", flush=True)


async def run_phases(topo: Topo, n_pub: int, n_batch: int, n_consume: int) -> None:
    assert topo.sidecar is not None
    grpc_c = bench.FridayClient(topo.sidecar.grpc_target, api_key=bench.KEY)
    http = bench.RawHttp(topo.sidecar.http_url, bench.KEY)
    tag = uuid.uuid4().hex[:6]
    streams = [f"{s}.{tag}" for s in topo.streams]
    try:
        # warm-up: connections, scripts loaded on every node
        for s in streams:
            await grpc_c.publish(s, bench.PAYLOAD)

        async def singles() -> float:
            async def step(w: int) -> int:
                await grpc_c.publish(streams[w % STREAMS], bench.PAYLOAD)
                return 1
            return await concurrent(n_pub, CONCURRENCY, step)
        await measured(topo, "publish gRPC x32", n_pub, singles)

        events = [Event(streams[i % STREAMS], bench.PAYLOAD) for i in range(bench.BATCH)]

        async def grpc_batches() -> float:
            async def step(w: int) -> int:
                await grpc_c.publish_batch(events)
                return bench.BATCH
            return await bench.throughput(n_batch, 1, step)
        await measured(topo, "PublishBatch 500", n_batch, grpc_batches)

        body = {"events": [{"stream": streams[i % STREAMS], "payload": bench.PAYLOAD} for i in range(bench.BATCH)]}

        async def http_batches() -> float:
            async def step(w: int) -> int:
                status, out = await http.post("/api/v1/events/publish/batch", body)
                if status != 200:
                    raise SystemExit(f"HTTP batch failed: {status} {out}")
                return bench.BATCH
            return await bench.throughput(n_batch, 1, step)
        await measured(topo, "HTTP publish/batch 500", n_batch, http_batches)

        per = n_consume // STREAMS
        for kind in ("grpc", "http"):
            cstreams = [f"{s}.consume.{kind}" for s in topo.streams]
            for s in cstreams:
                await topo.redis.xgroup_create(s, "g", "0", mkstream=True)
                await bench.fill(topo.redis, s, per, chunk=2_000)

            async def consume_grpc(s: str) -> None:
                await bench.grpc_consume_ack(grpc_c, s, per)

            async def consume_http(s: str) -> None:
                await bench.http_consume_ack(http, s, per)

            fn = consume_grpc if kind == "grpc" else consume_http

            async def consume(fn: Callable[[str], Awaitable[None]] = fn, cstreams: list[str] = cstreams) -> float:
                t0 = time.perf_counter()
                await asyncio.gather(*(fn(s) for s in cstreams))
                return per * STREAMS / (time.perf_counter() - t0)
            label = "consume+ack gRPC" if kind == "grpc" else "consume+ack HTTP"
            await measured(topo, f"{label} x{STREAMS}", per * STREAMS, consume)
            left = sum([(await topo.redis.xpending(s, "g"))["pending"] for s in cstreams])
            assert left == 0, f"{topo.name}: {left} un-acked entries left"
    finally:
        await http.close()
        await grpc_c.close()


def stream_names(shard_of: Callable[[str], str] | None, shards: list[str]) -> list[str]:
    """STREAMS names; on the cluster spread evenly over the shards."""
    if shard_of is None:
        return [f"bench.c{i}" for i in range(STREAMS)]
    out, i = [], 0
    for k in range(STREAMS):
        want = shards[k % len(shards)]
        while shard_of(name := f"bench.c{i}") != want:
            i += 1
        out.append(name)
        i += 1
    return out


def report(topos: list[Topo], args: argparse.Namespace) -> str:
    single, cluster = topos
    head = (f"Friday sidecar: one Redis vs a 3-master cluster ({args.replicas} replica(s) per master), "
            f"{'quick' if args.quick else 'full'} sizes, {os.cpu_count()} cores; CPU in µs per event (user+sys)")
    cols = f"{'phase':26}{'single ev/s':>12}{'cluster ev/s':>13}{'ratio':>7}  {'sidecar µs/ev':>15}  {'redis µs/ev':>13}  {'client µs/ev':>14}"
    lines = [head, "", cols, "-" * len(cols)]
    for phase, a in single.results.items():
        b = cluster.results[phase]
        lines.append(f"{phase:26}{a['ev_s']:>12,}{b['ev_s']:>13,}{b['ev_s'] / a['ev_s']:>7.2f}  "
                     f"{a['sidecar_us_ev']:>6.1f} / {b['sidecar_us_ev']:<6.1f}  {a['redis_us_ev']:>5.1f} / {b['redis_us_ev']:<5.1f}  "
                     f"{a['client_us_ev']:>6.1f} / {b['client_us_ev']:<6.1f}")
    lines += ["", "ratio = cluster / single; CPU columns: single / cluster (redis: summed over the cluster's nodes).",
              "Reported, not a target: every process shares the same cores here."]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    n_pub, n_batch, n_consume = (3_000, 10_000, 12_000) if args.quick else (10_000, 50_000, 60_000)
    work = Path(tempfile.mkdtemp(prefix="friday-bench-cluster-"))
    single_srv = Standalone(work / "single").start()
    cluster_srv = None
    topos: list[Topo] = []
    try:
        cluster_srv = Cluster(work / "cluster", masters=3, replicas=args.replicas).start()
        view = cluster_srv.view()
        slots = {}
        for node in view:
            if node.is_master:
                for a, b in node.slots:
                    slots.update(dict.fromkeys(range(a, b + 1), node.address))
        from redis.crc import key_slot

        def shard_of(name: str) -> str:
            return slots[key_slot(name.encode())]
        topos = [
            Topo("single", {"FRIDAY_REDIS_MODE": "standalone", "FRIDAY_REDIS_URL": single_srv.url},
                 [single_srv.server.pid or 0], aioredis.Redis.from_url(single_srv.url, decode_responses=True),
                 stream_names(None, [])),
            Topo("cluster", cluster_srv.env(), [n.pid or 0 for n in cluster_srv.nodes],
                 RedisCluster.from_url(cluster_srv.url, decode_responses=True),
                 stream_names(shard_of, sorted(set(slots.values())))),
        ]
        for t in topos:
            t.sidecar = start_sidecar(work / f"sidecar-{t.name}", t.env)
            print(f"{t.name}: sidecar pid {t.sidecar.proc.pid}, redis pids {t.redis_pids}", flush=True)
            try:
                await run_phases(t, n_pub, n_batch, n_consume)
            finally:
                t.sidecar.stop()
                await t.redis.aclose()
    finally:
        single_srv.stop()
        if cluster_srv is not None:
            cluster_srv.stop()
    text = report(topos, args)
    print("\n" + text)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"bench-cluster-{stamp}.json").write_text(json.dumps(
        {"quick": args.quick, "replicas": args.replicas, **{t.name: t.results for t in topos}}, indent=2))
    (out / f"bench-cluster-{stamp}.txt").write_text(text + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="scaled-down sizes (~40 s)")
    ap.add_argument("--replicas", type=int, default=0, help="replicas per cluster master (default 0)")
    return asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
