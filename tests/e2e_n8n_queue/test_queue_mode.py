"""The Friday Trigger in a real n8n 2.x in QUEUE mode: trigger on the main, executions on a worker.

One set for the whole module (issue 9): a PostgreSQL cluster of its own (Debian's
``postgresql``, initdb in a temp folder, free loopback port), a redis-server for n8n's Bull
queue only, the sidecar on its own embedded Redis, ``n8n start`` (EXECUTIONS_MODE=queue)
and one ``n8n worker --concurrency=5``, each on free loopback ports. The package is built
from the current sources and unpacked into the main's and the worker's user folders (a
worker loads node types from its own folder). Main and worker share N8N_ENCRYPTION_KEY.

The tests run in file order; the last two restart processes (worker SIGKILL, main restart).
Nothing asserts on wall-clock time: every wait polls for an outcome with a generous timeout,
and concurrency is measured from the order of n8n's own start/stop timestamps and from the
sidecar's pending count.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest
from friday_e2e import (
    CREDENTIAL_TYPE,
    FRIDAY_TYPE,
    MAKE_HINT,
    TRIGGER_TYPE,
    PackageBuildError,
    SidecarAdmin,
    build_package_tarball,
    chain,
    execution_error,
    friday_ack,
    friday_credential,
    friday_publish,
    friday_reject,
    friday_status,
    friday_trigger,
    if_number_lt,
    node_output,
    noop,
    poll,
    stop_and_error,
    wait_node,
    workflow,
)
from n8n_harness import N8nInstall, N8nInstance, N8nNotInstalled
from queue_harness import BULL_RETENTION_ENV, PostgresNotInstalled, QueueSet

# The regular-mode module's helpers take any object with .n8n, .bus and .describe().
from tests.e2e_n8n.test_friday_nodes import executions, publish_workflow, running_executions, trigger_meta, wait_settled
from tests.sidecar_fixture import Sidecar, launch_sidecar_retried

pytestmark = pytest.mark.n8n

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
BURST_WF_ID = "QueueBurstWf0001"  # fixtures/burst-workflow.json, published before the main starts
MAX_DELIVERIES = 3
WORKER_CONCURRENCY = 5
# As in regular mode, scaled for a test: the sidecar reclaims an idle delivery after 15 s, and
# every trigger here tells it each second that its execution is still running (keepAlive 1 s),
# so only a dead trigger's deliveries are reclaimed (a main busy starting up on two shared cores
# was seen to send no keep-alive for 3 s: 4 s of claim idle made that a redelivery). Failed deliveries retry after 100-400 ms.
SIDECAR_ENV = {
    "CLAIM_IDLE_MS": 15000,
    "CLAIM_INTERVAL_MS": 200,
    "BACKOFF_INITIAL_MS": 100,
    "BACKOFF_MAX_MS": 400,
    "MAX_DELIVERIES": MAX_DELIVERIES,
}
BLOCK_MS = 5000
KEEP_ALIVE_S = 1


@dataclass
class QEnv:
    sidecar: Sidecar
    qs: QueueSet
    bus: SidecarAdmin
    tarball: Path

    @property
    def n8n(self) -> N8nInstance:
        assert self.qs.main is not None
        return self.qs.main

    @property
    def worker(self) -> N8nInstance:
        assert self.qs.worker is not None
        return self.qs.worker

    def describe(self, workflow_id: str | None = None) -> str:
        lines = [f"--- sidecar log tail ---\n{self.sidecar.log_tail(3000)}", self.qs.logs(60)]
        try:
            groups = {
                f"{name}/{g['name']}": (g["pending"], g["lag"])
                for name in self.bus.streams()
                for g in self.bus.stream_status(name)["groups"]
            }
            lines.insert(0, f"groups (pending, lag): {groups}")
            lines.insert(0, f"executions by status: {Counter(e['status'] for e in self.n8n.list_executions(limit=500))}")
        except Exception as exc:  # noqa: BLE001 - diagnostics only
            lines.insert(0, f"(state unavailable: {exc})")
        if workflow_id:
            try:
                lines.insert(0, f"executions: {json.dumps(self.n8n.list_executions(workflow_id))[:1500]}")
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                lines.insert(0, f"(executions unavailable: {exc})")
        return "\n".join(lines)


def _fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="module")
def qenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QEnv]:
    try:
        install = N8nInstall.find()
    except N8nNotInstalled as exc:
        _fail(f"{exc}\nTo install everything the tests need, {MAKE_HINT}.")
    root = tmp_path_factory.mktemp("friday-n8n-queue")
    try:
        tarball = build_package_tarball(root / "pkg")
    except PackageBuildError as exc:
        _fail(str(exc))
    try:
        qs = QueueSet(install, root, concurrency=WORKER_CONCURRENCY)
    except PostgresNotInstalled as exc:
        _fail(str(exc))
    sidecar = None
    bus = None
    try:
        qs.start_backends()
        sidecar = launch_sidecar_retried(root, None, SIDECAR_ENV)  # on its embedded Redis
        bus = SidecarAdmin(sidecar.http_url, sidecar.api_key)
        qs.prepare(tarball, [friday_credential(sidecar.http_url, sidecar.api_key)])
        # A workflow shipped as a file, published before the main starts (as a deployment does);
        # its group exists before the trigger's first read.
        bus.create_group("q.orders", "order-processor")
        qs.main.import_workflows(FIXTURES / "burst-workflow.json")
        qs.main.cli("publish:workflow", f"--id={BURST_WF_ID}")
        qs.start()
        yield QEnv(sidecar, qs, bus, tarball)
    finally:
        qs.close()
        if bus is not None:
            bus.close()
        if sidecar is not None:
            sidecar.stop()


def worker_ran(env: QEnv, execution_id: str | int) -> bool:
    return f"Worker started execution {execution_id} " in env.worker.log_text()


def intervals(runs: list[dict], first: str, last: str) -> list[tuple[int, int]]:
    """(start, end) of each execution in n8n's own clock: the first node's start and the last
    node's start + execution time, from the execution data the worker saved."""
    out = []
    for run in runs:
        data = run["data"]["resultData"]["runData"]
        start = int(data[first][0]["startTime"])
        end = int(data[last][0]["startTime"]) + int(data[last][0]["executionTime"])
        out.append((start, end))
    return out


def max_overlap(spans: list[tuple[int, int]]) -> int:
    """Most intervals open at one time (an end at t closes before a start at t opens)."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    best = cur = 0
    for _, delta in events:
        cur += delta
        best = max(best, cur)
    return best


class PendingSampler:
    """Samples the group's pending count (XPENDING through the sidecar) in a thread."""

    def __init__(self, env: QEnv, stream: str, group: str) -> None:
        self.env, self.stream, self.group = env, stream, group
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        bus = SidecarAdmin(self.env.sidecar.http_url, self.env.sidecar.api_key)
        try:
            while not self._stop.is_set():
                self.samples.append(bus.group_status(self.stream, self.group)["pending"])
                self._stop.wait(0.05)
        finally:
            bus.close()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# ------------------------------------------------------------------------------ set-up
def test_queue_mode_set_up(qenv: QEnv) -> None:
    env = qenv
    # Both n8n processes run in queue mode on PostgreSQL and the Bull Redis.
    for inst in (env.n8n, env.worker):
        e = inst.env()
        assert e["EXECUTIONS_MODE"] == "queue" and e["DB_TYPE"] == "postgresdb"
        assert e["QUEUE_BULL_REDIS_PORT"] == str(env.qs.redis.port)
        assert e["N8N_ENCRYPTION_KEY"] == env.n8n.env()["N8N_ENCRYPTION_KEY"]
    assert env.sidecar.redis_url is None  # the sidecar runs on its own embedded Redis
    for name, value in BULL_RETENTION_ENV.items():  # see queue_harness.BULL_RETENTION_ENV
        assert env.n8n.env()[name] == value
    assert "n8n worker is now ready" in env.worker.log_text()
    assert f"Concurrency: {WORKER_CONCURRENCY}" in env.worker.log_text()
    # The package is installed in both user folders; the main loaded both node types.
    for inst in (env.n8n, env.worker):
        assert (inst.nodes_dir / "node_modules" / "n8n-nodes-friday" / "dist" / "nodes" / "Friday" / "Friday.node.js").is_file()
    loaded = {d["displayName"] for d in env.n8n.node_types(TRIGGER_TYPE, FRIDAY_TYPE)}
    assert loaded == {"Friday Trigger", "Friday"}
    # The credential and the workflows live in PostgreSQL, where the worker reads them.
    assert env.qs.pg.psql(f"select type from credentials_entity where type = '{CREDENTIAL_TYPE}'").split() == [CREDENTIAL_TYPE]
    assert BURST_WF_ID in env.n8n.active_workflow_ids()
    env.n8n.wait_published(BURST_WF_ID)


# ------------------------------------------------------------------------------ burst, exactly once
def test_burst_exactly_once_on_the_worker(qenv: QEnv) -> None:
    """30 events on the fixture workflow (published before start, parallel 4, default ack mode)."""
    env = qenv
    n, stream, group, out = 30, "q.orders", "order-processor", "q.orders.done"
    check_group = f"check-{uuid.uuid4().hex[:6]}"
    env.bus.create_group(out, check_group, "new")
    published = {f"o-{i:02d}": env.bus.publish(stream, {"order_id": f"o-{i:02d}"})["id"] for i in range(n)}

    wait_settled(env, stream, group, timeout=120)
    runs = executions(env, BURST_WF_ID, n, timeout=120)
    assert len(runs) == n and {r["status"] for r in runs} == {"success"}, [execution_error(r) for r in runs]
    metas = [trigger_meta(r) for r in runs]
    assert Counter(m["id"] for m in metas) == Counter(published.values())
    assert {m["deliveryCount"] for m in metas} == {1}
    assert {m["ackMode"] for m in metas} == {"executionFinishesSuccessfully"}
    # Every execution ran on the worker, none on the main; all are stored in PostgreSQL.
    assert all(worker_ran(env, r["id"]) for r in runs), env.describe(BURST_WF_ID)
    assert "Worker started execution" not in env.n8n.log_text()
    assert all(f"Enqueued execution {r['id']} " in env.n8n.log_text() for r in runs)
    # The jobs went through the Bull Redis, which keeps the finished ones (BULL_RETENTION_ENV).
    with env.qs.redis.client() as bull:
        assert bull.zcard("bull:jobs:completed") >= n
    stored = env.qs.pg.psql(f"select status, count(*) from execution_entity where \"workflowId\" = '{BURST_WF_ID}' group by status")
    assert stored.split() == [f"success|{n}"]
    # The Friday node on the worker wrote one event per order, no more.
    done = env.bus.read(out, check_group, "checker", count=100, block_ms=1000)
    assert Counter(d["payload"]["order_id"] for d in done) == Counter(list(published))
    assert {d["payload"]["source_id"] for d in done} == set(published.values())
    assert env.bus.read(out, check_group, "checker", block_ms=500) == []
    assert env.bus.dlq(stream) == []


# ------------------------------------------------------------------------------ failure -> DLQ
def test_failing_workflow_is_retried_then_dead_lettered(qenv: QEnv) -> None:
    env = qenv
    stream, group = "q.payments", "payment-processor"
    env.bus.create_group(stream, group)
    wf_id = publish_workflow(env, chain("Payments (always fails)", [
        friday_trigger(stream=stream, group=group, blockMs=BLOCK_MS, keepAlive=KEEP_ALIVE_S),
        stop_and_error("Refuse payment", "=Payment {{ $json.payment_id }} refused on the worker"),
    ]))  # fmt: skip
    entry_id = env.bus.publish(stream, {"payment_id": "p-9"})["id"]

    (dead,) = poll("the payment in the dead-letter queue", lambda: env.bus.dlq(stream), timeout=120, describe=lambda: env.describe(wf_id))
    # The worker's error text reached the trigger on the main through the done promise.
    assert dead["reason"] == "Payment p-9 refused on the worker"
    assert dead["original_id"] == entry_id and dead["group"] == group
    assert dead["delivery_count"] == MAX_DELIVERIES and dead["payload"] == {"payment_id": "p-9"}
    runs = executions(env, wf_id, MAX_DELIVERIES)
    assert {r["status"] for r in runs} == {"error"}
    assert {execution_error(r) for r in runs} == {"Payment p-9 refused on the worker"}
    assert [trigger_meta(r)["deliveryCount"] for r in runs] == list(range(1, MAX_DELIVERIES + 1))
    assert all(worker_ran(env, r["id"]) for r in runs)
    wait_settled(env, stream, group)
    env.n8n.unpublish(wf_id)


# ------------------------------------------------------------------------------ later in the workflow
def test_acknowledge_later_in_the_workflow_on_the_worker(qenv: QEnv) -> None:
    env = qenv
    stream, group = "q.docs", "doc-indexer"
    env.bus.create_group(stream, group)
    wf_id = publish_workflow(env, chain("Ack later (worker)", [
        friday_trigger(stream=stream, group=group, ack_mode="laterInWorkflow", blockMs=BLOCK_MS, keepAlive=KEEP_ALIVE_S),
        friday_status("Status before ack", stream, position=(220, 0)),
        friday_ack("Acknowledge", position=(440, 0)),
        friday_status("Status after ack", stream, position=(660, 0)),
    ]))  # fmt: skip
    entry_id = env.bus.publish(stream, {"doc": "d-1"})["id"]
    (run,) = executions(env, wf_id, 1)
    assert run["status"] == "success", execution_error(run)
    assert worker_ran(env, run["id"])
    meta = trigger_meta(run)
    assert meta["id"] == entry_id and meta["ackMode"] == "laterInWorkflow"

    def group_in(node: str) -> dict:
        (status,) = node_output(run, node)
        return next(g for g in status["groups"] if g["name"] == group)

    before = group_in("Status before ack")
    assert before["pending"] == 1
    assert {c["name"]: c["pending"] for c in before["consumers"]}[f"n8n-{wf_id}"] == 1
    (acked,) = node_output(run, "Acknowledge")
    assert acked == {"stream": stream, "group": group, "id": entry_id, "acked": 1}
    assert group_in("Status after ack")["pending"] == 0
    wait_settled(env, stream, group)
    assert len(env.n8n.list_executions(wf_id)) == 1
    env.n8n.unpublish(wf_id)


def test_reject_later_in_the_workflow_on_the_worker(qenv: QEnv) -> None:
    env = qenv
    stream, group = "q.reviews", "reviewer"
    env.bus.create_group(stream, group)
    nodes = [
        friday_trigger(stream=stream, group=group, ack_mode="laterInWorkflow", blockMs=BLOCK_MS, keepAlive=KEEP_ALIVE_S),
        if_number_lt("First delivery?", "={{ $json._friday.deliveryCount }}", 2, position=(220, 0)),
        friday_reject("Reject", "Needs a second look", position=(440, -100)),
        friday_ack("Acknowledge", position=(440, 100)),
    ]
    edges = [("Friday Trigger", "First delivery?"), ("First delivery?", "Reject", 0), ("First delivery?", "Acknowledge", 1)]
    wf_id = publish_workflow(env, workflow("Reject then retry (worker)", nodes, edges))
    entry_id = env.bus.publish(stream, {"review": "r-1"})["id"]

    first, second = executions(env, wf_id, 2)
    assert first["status"] == second["status"] == "success"
    assert all(worker_ran(env, r["id"]) for r in (first, second))
    assert [trigger_meta(r)["deliveryCount"] for r in (first, second)] == [1, 2]
    assert {trigger_meta(r)["id"] for r in (first, second)} == {entry_id}
    (rejected,) = node_output(first, "Reject")
    assert rejected["outcome"] == "retry" and rejected["id"] == entry_id
    assert node_output(first, "Acknowledge") == []
    (acked,) = node_output(second, "Acknowledge")
    assert acked["acked"] == 1 and node_output(second, "Reject") == []
    wait_settled(env, stream, group)
    assert env.bus.dlq(stream) == []
    env.n8n.unpublish(wf_id)


# ------------------------------------------------------------------------------ parallel limit
def test_parallel_limit_holds_across_worker_concurrency(qenv: QEnv) -> None:
    """Trigger limit 2 on a worker with 5 slots: never more than 2 of its executions at once
    (sidecar pending count sampled, and n8n's own timestamps), while a limit of 5 does reach
    more than 2 on the same worker (so the trigger's limit is what holds, not the worker)."""
    env = qenv
    cases = {"limited": (2, 8), "control": (WORKER_CONCURRENCY, WORKER_CONCURRENCY)}
    results: dict[str, tuple[list[int], int]] = {}
    for name, (limit, count) in cases.items():
        stream, group = f"q.parallel-{name}", "par-proc"
        env.bus.create_group(stream, group)
        wf_id = publish_workflow(env, chain(f"Parallel {limit} ({name})", [
            friday_trigger(stream=stream, group=group, blockMs=BLOCK_MS, parallelExecutions=limit, keepAlive=KEEP_ALIVE_S),
            wait_node("Work", 2, position=(220, 0)),
            noop("Done", position=(440, 0)),
        ]))  # fmt: skip
        with PendingSampler(env, stream, group) as sampler:
            ids = [env.bus.publish(stream, {"job": f"{name}-{i}"})["id"] for i in range(count)]
            runs = executions(env, wf_id, count, timeout=120)
            wait_settled(env, stream, group)
        assert len(runs) == count and {r["status"] for r in runs} == {"success"}
        assert sorted(trigger_meta(r)["id"] for r in runs) == sorted(ids)
        assert {trigger_meta(r)["deliveryCount"] for r in runs} == {1}
        assert all(worker_ran(env, r["id"]) for r in runs)
        results[name] = (sampler.samples, max_overlap(intervals(runs, "Friday Trigger", "Done")))
        env.n8n.unpublish(wf_id)

    samples, overlap = results["limited"]
    assert samples and max(samples) <= 2, Counter(samples)
    assert overlap == 2, results  # the limit was reached, and held
    control_samples, control_overlap = results["control"]
    assert control_overlap > 2 and max(control_samples) > 2, results


# ------------------------------------------------------------------------------ worker SIGKILL
def test_worker_killed_during_execution_redelivers(qenv: QEnv) -> None:
    env = qenv
    stream, group = "q.slow", "slow-proc"
    env.bus.create_group(stream, group)
    wf_id = publish_workflow(env, chain("Slow job (worker)", [
        friday_trigger(stream=stream, group=group, blockMs=BLOCK_MS, keepAlive=KEEP_ALIVE_S),
        wait_node("Slow step", 5, position=(220, 0)),
        noop("Done", position=(440, 0)),
    ]))  # fmt: skip
    entry_id = env.bus.publish(stream, {"job": "j-1"})["id"]
    (running,) = poll("a running execution", lambda: running_executions(env, wf_id), timeout=60, describe=lambda: env.describe(wf_id))
    poll("the worker to pick the job", lambda: worker_ran(env, running["id"]), timeout=30)

    env.worker.kill()  # SIGKILL of the worker and its task runner, mid-execution
    state = env.bus.group_status(stream, group)
    assert state["pending"] == 1 and {c["name"] for c in state["consumers"]} == {f"n8n-{wf_id}"}
    env.worker.start()

    done = env.n8n.wait_for_executions(wf_id, 1, timeout=120, include_data=True, predicate=lambda e: e["status"] == "success")
    (ok,) = done
    meta = trigger_meta(ok)
    assert meta["id"] == entry_id and meta["deliveryCount"] == 2  # redelivered once, after the crash
    assert node_output(ok, "Done")[0]["job"] == "j-1"
    assert worker_ran(env, ok["id"])
    wait_settled(env, stream, group)
    assert env.bus.dlq(stream) == []
    # The killed run is not a success: Bull failed its stalled job and the main recorded it.
    statuses = {e["id"]: e["status"] for e in env.n8n.list_executions(wf_id)}
    assert statuses[running["id"]] in {"error", "crashed"}, statuses
    assert Counter(statuses.values())["success"] == 1, statuses
    # n8n runs Bull with maxStalledCount 0: the restarted worker's stalled check failed the
    # job; the main recorded the run as failed and resolved the trigger's done promise, so
    # the trigger rejected the delivery and the sidecar delivered it again.
    log = env.n8n.log_text()
    assert f"job stalled more than maxStalledCount (execution {running['id']})" in log, env.n8n.log_tail()
    assert f"Problem with execution {running['id']}: This execution failed to be processed too many times" in log
    env.n8n.unpublish(wf_id)


# ------------------------------------------------------------------------------ main restart
def test_main_restart_loses_nothing_and_runs_nothing_twice(qenv: QEnv) -> None:
    """Events published before, during (main down) and after a graceful main restart, while
    the worker keeps running: every event is processed exactly once."""
    env = qenv
    stream, group, out = "q.invoices", "invoicer", "q.invoices.done"
    env.bus.create_group(stream, group)
    check_group = f"check-{uuid.uuid4().hex[:6]}"
    env.bus.create_group(out, check_group, "new")
    wf_id = publish_workflow(env, chain("Invoices (restart)", [
        friday_trigger(stream=stream, group=group, blockMs=BLOCK_MS, parallelExecutions=2, keepAlive=KEEP_ALIVE_S),
        wait_node("Work", 1, position=(220, 0)),
        friday_publish("Publish invoice.done", out, "={{ { invoice: $('Friday Trigger').item.json.invoice, source_id: $('Friday Trigger').item.json._friday.id } }}", position=(440, 0)),
    ]))  # fmt: skip
    published: dict[str, str] = {}

    def publish(batch: str, count: int) -> None:
        for i in range(count):
            key = f"{batch}-{i}"
            published[key] = env.bus.publish(stream, {"invoice": key})["id"]

    publish("before", 10)
    poll("some invoices done before the restart", lambda: len(env.n8n.list_executions(wf_id)) >= 3, timeout=90)
    env.n8n.stop()  # SIGTERM: the trigger's closeFunction waits for its executions on the worker
    publish("during", 10)
    env.n8n.start()
    env.n8n.login()
    env.n8n.wait_published(wf_id)
    publish("after", 5)

    wait_settled(env, stream, group, timeout=120)
    runs = executions(env, wf_id, len(published), timeout=120)
    done = env.bus.read(out, check_group, "checker", count=100, block_ms=1000)
    assert Counter(d["payload"]["invoice"] for d in done) == Counter(list(published)), Counter(d["payload"]["invoice"] for d in done)
    assert env.bus.read(out, check_group, "checker", block_ms=500) == []
    ok = [r for r in runs if r["status"] == "success"]
    assert Counter(trigger_meta(r)["id"] for r in ok) == Counter(published.values())
    assert len(runs) == len(published), Counter(r["status"] for r in runs)
    assert all(worker_ran(env, r["id"]) for r in runs)
    assert env.bus.dlq(stream) == []
    env.n8n.unpublish(wf_id)
