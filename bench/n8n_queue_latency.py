#!/usr/bin/env python3
"""Latency from publish to workflow start through a real n8n 2.x in QUEUE mode (main + worker).

    python bench/n8n_queue_latency.py            # 200 measured events (+10 warm-up)
    python bench/n8n_queue_latency.py --quick    # 50 events

The same workflow, closed loop and measures as bench/n8n_latency.py (its functions are
imported, not copied), on the queue-mode set of tests/e2e_n8n_queue: a PostgreSQL cluster of
its own, a redis-server for n8n's Bull queue, `n8n start` with EXECUTIONS_MODE=queue holding
the Friday Trigger, and one `n8n worker --concurrency=5` running the executions. Per event:

* publish -> workflow start: the trigger node's start time in the execution data (set by the
  worker when it starts the run) minus the sidecar's publish timestamp: sidecar long poll +
  the main putting the job on Bull + the worker taking it and loading the execution;
* publish -> first node (Code) runs on the worker (through the worker's JS task runner);
* publish -> done event back at this process, for reference.

Printed next to the regular-mode figures of bench-results/n8n_latency.json when that file
exists (`python bench/n8n_latency.py` writes it), against the same targets (p50 <= 50 ms,
p99 <= 250 ms, workflow start), and written to bench-results/n8n_queue_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "sidecar", ROOT / "tests" / "e2e_n8n", ROOT / "tests" / "e2e_n8n_queue", ROOT / "bench", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from friday_e2e import MAKE_HINT, PackageBuildError, SidecarAdmin, build_package_tarball, friday_credential
from n8n_harness import N8nInstall, N8nNotInstalled
from n8n_latency import GROUP, STREAM, TARGETS, Sidecar, bench_workflow, drive, fmt, stats, workflow_starts
from queue_harness import PostgresNotInstalled, QueueSet

OUT = ROOT / "bench-results"
LABELS = {
    "start": "publish -> workflow start",
    "first_node": "publish -> first node (Code) runs",
    "round_trip": "publish -> done event back (client)",
}


def regular_results() -> dict[str, Any] | None:
    path = OUT / "n8n_latency.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def report(results: dict[str, dict[str, float]], args: argparse.Namespace, version: str, regular: dict[str, Any] | None) -> str:
    lines = [
        "",
        (f"n8n QUEUE-mode latency: publish -> Friday Trigger workflow start — n8n {version}, main + 1 worker "
        f"(--concurrency={args.concurrency}), PostgreSQL, Bull on its own Redis; {os.cpu_count()} CPUs"),
        f"{args.events} measured events (+{args.warmup} warm-up), one at a time, {args.gap_ms} ms idle gap",
        "",
    ]
    hdr = f"{'measure (ms)':<38}{'mode':<9}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'mean':>8}"
    lines += [hdr, "-" * len(hdr)]
    for key, label in LABELS.items():
        rows = [("queue", results[key])]
        if regular and key in regular.get("results_ms", {}):
            rows.append(("regular", regular["results_ms"][key]))
        for mode, s in rows:
            lines.append(f"{label:<38}{mode:<9}{fmt(s['p50']):>8}{fmt(s['p90']):>8}{fmt(s['p99']):>8}{fmt(s['max']):>8}{fmt(s['mean']):>8}")
    if regular:
        lines.append(f"(regular mode: bench-results/n8n_latency.json, {regular.get('events')} events, measured {regular.get('time')})")
    else:
        lines.append("(no regular-mode figures: run `python bench/n8n_latency.py` first to print them side by side)")
    lines += ["", f"{'target (queue mode)':<44}{'measured':>12}   {'goal':<10} result", "-" * 76]
    for q, goal in TARGETS.items():
        measured = results["start"][q]
        lines.append(f"{LABELS['start'] + ' ' + q:<44}{fmt(measured) + ' ms':>12}   {'≤ ' + fmt(goal) + ' ms':<10} {'PASS' if measured <= goal else 'MISS'}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200, help="measured events (default 200)")
    ap.add_argument("--warmup", type=int, default=10, help="events before measuring (default 10)")
    ap.add_argument("--gap-ms", type=int, default=100, help="idle time between one event's end and the next publish")
    ap.add_argument("--concurrency", type=int, default=5, help="n8n worker --concurrency (default 5)")
    ap.add_argument("--quick", action="store_true", help="50 measured events")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a workflow-start target is missed")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (n8n, postgres and sidecar logs)")
    args = ap.parse_args()
    if args.quick:
        args.events = min(args.events, 50)
    try:
        install = N8nInstall.find()
    except N8nNotInstalled as exc:
        print(f"{exc}\n{MAKE_HINT}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="friday-n8n-queue-bench-"))
    sidecar: Sidecar | None = None
    qs: QueueSet | None = None
    try:
        print(f"building n8n-nodes-friday, starting PostgreSQL, Bull Redis and the sidecar (work folder {work})", flush=True)
        try:
            tarball = build_package_tarball(work / "pkg")
            qs = QueueSet(install, work, concurrency=args.concurrency, log_level="warn")
        except (PackageBuildError, PostgresNotInstalled) as exc:
            print(exc, file=sys.stderr)
            return 2
        qs.start_backends()
        sidecar = Sidecar(work)
        admin = SidecarAdmin(sidecar.http_url, sidecar.api_key)
        qs.prepare(tarball, [friday_credential(sidecar.http_url, sidecar.api_key)])
        qs.start()
        assert qs.main is not None and qs.worker is not None
        n8n = qs.main
        wf = n8n.create_workflow(bench_workflow())
        n8n.publish(wf["id"])
        print(
            f"n8n {install.version} main on {n8n.base_url} (ready in {n8n.startup_seconds:.1f} s), worker ready in "
            f"{qs.worker.startup_seconds:.1f} s; workflow {wf['id']} published",
            flush=True,
        )
        total = args.warmup + args.events
        load_before = os.getloadavg()[0]
        rows = asyncio.run(drive(sidecar, total, args.gap_ms, timeout_s=60))
        load_after = os.getloadavg()[0]
        starts = workflow_starts(n8n, wf["id"], total)
        measured = rows[args.warmup :]
        missing = [r["entry_id"] for r in measured if r["entry_id"] not in starts]
        if missing:
            print(f"warning: no execution data for {len(missing)} events", file=sys.stderr)
        with qs.redis.client() as bull:  # finished jobs are kept (queue_harness.BULL_RETENTION_ENV)
            on_worker = bull.zcard("bull:jobs:completed")
        results = {
            "start": stats([starts[r["entry_id"]] - r["published_ms"] for r in measured if r["entry_id"] in starts]),
            "first_node": stats([r["arrived_ms"] - r["published_ms"] for r in measured]),
            "round_trip": stats([r["round_trip_ms"] for r in measured]),
        }
        group = admin.group_status(STREAM, GROUP)
        admin.close()
        regular = regular_results()
        print(report(results, args, install.version, regular))
        print(f"\n{STREAM}/{GROUP} after the run: pending {group['pending']}, lag {group['lag']}; {on_worker} jobs completed by the worker (Bull)")
        print(f"load average (1 min) before / after: {load_before:.2f} / {load_after:.2f} on {os.cpu_count()} CPUs")
        OUT.mkdir(exist_ok=True)
        data = {
            "mode": "queue",
            "n8n_version": install.version,
            "worker_concurrency": args.concurrency,
            "events": args.events,
            "warmup": args.warmup,
            "gap_ms": args.gap_ms,
            "targets_ms": TARGETS,
            "results_ms": results,
            "regular_results_ms": regular.get("results_ms") if regular else None,
            "cpus": os.cpu_count(),
            "load_average_1m": [load_before, load_after],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (OUT / "n8n_queue_latency.json").write_text(json.dumps(data, indent=2))
        print(f"results written to {OUT / 'n8n_queue_latency.json'}")
        ok = all(results["start"][q] <= goal for q, goal in TARGETS.items())
        return 0 if ok or not args.strict else 1
    finally:
        if qs is not None:
            qs.close()
        if sidecar is not None:
            sidecar.stop()
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
