"""Micro-benchmark of tracing's cost on the core's publish path (issue 10): CPU microseconds per
event of ``EventBus.publish_batch`` (500 events per call, a real redis-server on a free port),
tracing off vs on (spans exported over OTLP/HTTP to a receiver in another process, so its CPU is
not counted; the exporter's background thread is: ``time.process_time``).

    .venv/bin/python scripts/bench_tracing.py            # off, on, on + publisher traceparent
    .venv/bin/python scripts/bench_tracing.py --mode off  # one mode (the others run as subprocesses)

``PYTHONPATH=<an older checkout>/sidecar`` runs the same measure on older code (mode ``off`` only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BATCH = 500
ROUNDS = 40
WARMUP = 5
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(redis_url: str, traceparent: str | None) -> dict[str, float]:
    from friday_bus.core import EventBus, PublishRequest, Settings, build_topology

    s = Settings(_env_file=None, redis_url=redis_url, key_prefix="bench:")
    bus = EventBus.from_url(redis_url, s, build_topology(s, {"streams": {"bench.events": ["g"]}, "channels": []}))
    await bus.setup()
    kw = {"traceparent": traceparent} if traceparent else {}
    reqs = [PublishRequest("bench.events", {"email_id": f"e-{i}", "n": i, "has_attachments": True}, **kw) for i in range(BATCH)]
    cpu, wall = [], []
    total0 = 0.0
    for r in range(WARMUP + ROUNDS):
        if r == WARMUP:
            total0 = time.process_time()
        c0, w0 = time.process_time(), time.perf_counter()
        await bus.publish_batch(reqs)
        c1, w1 = time.process_time(), time.perf_counter()
        if r >= WARMUP:
            cpu.append((c1 - c0) / BATCH * 1e6)
            wall.append((w1 - w0) / BATCH * 1e6)
        if r % 10 == 9:
            await bus.redis.xtrim("bench.events", maxlen=0)
    tracer = getattr(bus._ctx, "tracer", None)  # older code has none
    if tracer is not None:
        from friday_bus.core import tracing as tr

        tr.flush(30_000)  # the exporter thread's work for these spans, counted in the total
    total = (time.process_time() - total0) / (ROUNDS * BATCH) * 1e6
    await bus.close()
    return {"cpu_us": statistics.median(cpu), "total_cpu_us": total, "wall_us": statistics.median(wall),
            "tracing": tracer is not None}


def run_mode(mode: str, redis_url: str, otlp: str | None) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "FRIDAY_"))}
    if mode.startswith("on"):
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp or "", "OTEL_BSP_SCHEDULE_DELAY": "200"})
    out = subprocess.run([sys.executable, __file__, "--mode", mode, "--redis", redis_url], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["off", "on", "on-tp", "off-tp"])
    ap.add_argument("--redis")
    args = ap.parse_args()
    if args.mode:
        tp = TP if args.mode.endswith("-tp") else None
        print(json.dumps(asyncio.run(measure(args.redis, tp))))
        return
    port, rport = free_port(), free_port()
    with tempfile.TemporaryDirectory() as d:
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", d],
                                 stdout=subprocess.DEVNULL)
        receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(rport)])
        try:
            time.sleep(0.5)
            url = f"redis://127.0.0.1:{port}/0"
            rows = [(m, run_mode(m, url, f"http://127.0.0.1:{rport}")) for m in ("off", "off-tp", "on", "on-tp", "off")]
        finally:
            receiver.terminate()
            redis.terminate()
    for m, r in rows:
        print(f"{m:7} tracing={r['tracing']!s:5}  CPU {r['cpu_us']:6.1f} us/event in the call (median of {ROUNDS} batches of "
              f"{BATCH}), {r['total_cpu_us']:6.1f} with the exporter thread  wall {r['wall_us']:6.1f} us/event")


if __name__ == "__main__":
    main()
