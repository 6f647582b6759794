#!/usr/bin/env python3
"""FRIDAY_WORKERS: single-event HTTP publishes from concurrent connections, 1 worker vs N.

    python bench/bench_workers.py                    # FRIDAY_WORKERS=1 then 2, 32 connections, 10 s each
    python bench/bench_workers.py --workers 1,2,4 --connections 64 --seconds 20

For each worker count: one redis-server (bench.start_redis: free port, AOF everysec) shared by
the runs, and `friday serve` as it is deployed (the `friday` console script, so the log level and
access log are the ones `friday serve` uses) on fixed free ports. ``--connections`` keep-alive
connections (bench.RawHttp, the lean client) each publish one event at a time
(POST /api/v1/events/publish) for ``--warmup`` seconds, then for ``--seconds`` measured seconds.

Printed per run: events/s, and CPU µs per event (user + system from /proc/PID/stat, fields 14 and
15, in clock ticks) of the sidecar summed over all its processes (the supervisor and its workers;
with 1 worker, the one process), of Redis, and of this client (which shares the machine: on a
small one it takes cores the sidecar could use). Results also go to bench-results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench

TICK = os.sysconf("SC_CLK_TCK")
STARTUP_S = 60.0


def cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process (/proc/PID/stat fields 14 and 15); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def start_serve(workdir: Path, redis_url: str, workers: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    topology = workdir / "topology.json"
    topology.write_text(json.dumps({"streams": {}, "channels": [], "allow_unknown_streams": True}))
    http_port, grpc_port = bench.free_port(), bench.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRIDAY_")}
    env.update({
        "FRIDAY_REDIS_URL": redis_url, "FRIDAY_TOPOLOGY_FILE": str(topology), "FRIDAY_WORKERS": str(workers),
        "FRIDAY_HTTP_HOST": "127.0.0.1", "FRIDAY_HTTP_PORT": str(http_port),
        "FRIDAY_GRPC_HOST": "127.0.0.1", "FRIDAY_GRPC_PORT": str(grpc_port),
        "FRIDAY_API_KEYS": bench.KEY, "FRIDAY_DATA_DIR": str(workdir / "data"),
        "FRIDAY_KEY_PREFIX": f"friday:{uuid.uuid4().hex[:8]}:",
    })
    log = workdir / "sidecar.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "friday"), "serve"], cwd=workdir, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_S
    while "friday: HTTP on " not in log.read_text(errors="replace"):  # printed once every worker listens
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"the sidecar did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{http_port}", log


async def load(url: str, connections: int, warmup: float, seconds: float, stream: str,
               pids: dict[str, list[int]]) -> dict[str, float]:
    http = bench.RawHttp(url, bench.KEY, size=connections)
    counting = False
    done = errors = 0
    stop_at = time.monotonic() + warmup + seconds

    async def publisher(c: int) -> None:
        nonlocal done, errors
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            status, _ = await http.post("/api/v1/events/publish", {"stream": stream, "payload": {**bench.PAYLOAD, "n": i, "c": c}})
            if counting:
                if status == 200:
                    done += 1
                else:
                    errors += 1

    tasks = [asyncio.create_task(publisher(c)) for c in range(connections)]
    await asyncio.sleep(warmup)
    before = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
    t0 = time.monotonic()
    counting = True
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    after = {k: sum(cpu_s(p) for p in v) for k, v in pids.items()}
    await http.close()
    out = {"ev_s": done / elapsed, "errors": errors}
    for k in pids:
        out[f"{k}_us_ev"] = (after[k] - before[k]) * 1e6 / max(1, done)
        out[f"{k}_cores"] = (after[k] - before[k]) / elapsed
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2", help="comma-separated FRIDAY_WORKERS values to compare (default 1,2)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before (default 2)")
    args = ap.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="friday-bench-workers-") as tmp:
        workdir = Path(tmp)
        (workdir / "redis").mkdir()
        redis_proc, redis_url = bench.start_redis(workdir / "redis")
        try:
            for n in counts:
                proc, url, _ = start_serve(workdir / f"sidecar-{n}", redis_url, n)
                try:
                    sidecar = [proc.pid, *[p for p in children(proc.pid) if b"friday_bus.workers" in
                                           Path(f"/proc/{p}/cmdline").read_bytes()]]
                    pids = {"sidecar": sidecar, "redis": [redis_proc.pid], "client": [os.getpid()]}
                    r = asyncio.run(load(url, args.connections, args.warmup, args.seconds, f"bench.workers.{n}", pids))
                finally:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                rows.append({"workers": n, "processes": len(sidecar), **{k: round(v, 1) for k, v in r.items()}})
                print(f"FRIDAY_WORKERS={n}: {r['ev_s']:8,.0f} ev/s  sidecar {r['sidecar_us_ev']:6.0f} µs/ev "
                      f"({r['sidecar_cores']:.2f} cores)  redis {r['redis_us_ev']:5.0f} µs/ev  "
                      f"client {r['client_us_ev']:5.0f} µs/ev ({r['client_cores']:.2f} cores)  errors {r['errors']:.0f}",
                      flush=True)
        finally:
            redis_proc.terminate()
            redis_proc.wait(30)
    out = ROOT / "bench-results" / f"bench-workers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"cpus": os.cpu_count(), "connections": args.connections, "seconds": args.seconds,
                               "runs": rows}, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
