"""`friday`: setup, status and maintenance of the Friday Event Bus, and `friday serve`.

Every command reads the same FRIDAY_* settings as the server. With FRIDAY_REDIS_URL unset
it uses the embedded Redis of FRIDAY_DATA_DIR: the one a running `friday serve` started, or
a temporary one started for the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from .core import ConfigError, EventBus, FridayError, PublishRequest, Runtime, load_settings
from .core.limits import DEFAULT_DLQ_LIST_COUNT
from .core.models import BusStatus

T = TypeVar("T")


def _settings():
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.asynccontextmanager
async def _bus() -> AsyncIterator[EventBus]:
    runtime = Runtime(_settings())
    try:
        bus = await runtime.start(run_setup=False, loops=False, attach=True)
        yield bus
    finally:
        await runtime.stop()


def _run(fn: Callable[[EventBus], Awaitable[T]]) -> T:
    async def go() -> T:
        async with _bus() as bus:
            return await fn(bus)

    try:
        return asyncio.run(go())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except FridayError as exc:
        raise click.ClickException(exc.message) from None


def _json(obj: Any) -> str:
    return json.dumps(dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj, indent=2, default=str)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Friday Event Bus: Redis Streams for Friday 2.0's critical events."""
    if ctx.invoked_subcommand == "serve" and not verbose:
        return  # `serve` logs at FRIDAY_LOG_LEVEL (server.serve / workers.supervise configure it)
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
def serve() -> None:
    """Run the sidecar: HTTP + gRPC APIs and the background loops (embedded Redis if FRIDAY_REDIS_URL is unset).

    With FRIDAY_WORKERS > 1: a supervisor and that many worker processes on the same ports."""
    settings = _settings()
    try:
        if settings.workers > 1:
            from .workers import supervise  # sets PROMETHEUS_MULTIPROC_DIR before prometheus_client loads

            supervise(settings)
        else:
            from .server import run

            run(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--start", type=click.Choice(["new", "all"]), default=None,
              help="Where NEW groups start: new events only (default, FRIDAY_SETUP_START) or the whole history.")
def setup(start: str | None) -> None:
    """Create the topology's streams and consumer groups. Safe to run again."""
    chosen = start or _settings().setup_start
    report = _run(lambda bus: bus.setup(chosen))  # type: ignore[arg-type]
    for s, g in report.created_groups:
        click.echo(f"created   group {g} on {s} (start: {chosen})")
    for s, g in report.existing_groups:
        click.echo(f"existing  group {g} on {s} (left unchanged)")
    for s in report.created_streams:
        click.echo(f"created   stream {s}")
    click.echo(f"setup done: {len(report.created_groups)} groups created, {len(report.existing_groups)} already existed")


def _age(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 120_000:
        return f"{ms / 1000:.0f}s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.0f}m"
    return f"{ms / 3_600_000:.1f}h"


def _print_redis(redis: dict[str, Any]) -> None:
    """Mode, serving master(s) and every node (core/connection.describe)."""
    masters = ", ".join(m["address"] for m in redis.get("masters", [])) or click.style("none found", fg="red", bold=True)
    service = f" ({redis['service']})" if redis.get("service") else ""
    click.echo(f"Mode {redis['mode']}{service}   serving master(s): {masters}")
    for n in redis.get("nodes", []):
        extra = ""
        if n.get("slots"):
            extra = " slots " + ",".join(f"{a}-{b}" for a, b in n["slots"])
        elif n.get("master"):
            extra = f" of {n['master']}"
        status = n["status"] if n["status"] == "ok" else click.style(n["status"], fg="red", bold=True)
        click.echo(f"  {n['role']:<8} {n['address']:<24} {status}{extra}")


def _print_status(status: BusStatus, redis: dict[str, Any] | None = None) -> None:
    red = lambda t: click.style(t, fg="red", bold=True)
    click.echo(f"Redis {status.redis_version}   {len(status.streams)} streams   channels: {', '.join(status.channels) or '-'}")
    if redis is not None:
        _print_redis(redis)
    header = f"{'STREAM / GROUP':<34} {'LENGTH':>8} {'PENDING':>8} {'LAG':>8} {'CONSUMERS':>9} {'DLQ':>6} {'OLDEST PENDING':>15}"
    click.echo(header)
    click.echo("-" * len(header))
    for st in status.streams:
        flagged = {(a.group, a.metric) for a in st.alerts}
        length = f"{st.length:>8}"
        if any(m == "backlog_over_retention" for _, m in flagged):
            length = red(length)
        dlq = f"{st.dead_letter_length:>6}"
        if (None, "dead_letters") in flagged:
            dlq = red(dlq)
        name = st.name if st.exists else f"{st.name} (missing)"
        click.echo(f"{name:<34} {length} {'':>8} {'':>8} {'':>9} {dlq} {_age(st.oldest_pending_age_ms):>15}")
        for g in st.groups:
            behind = (g.name, "backlog") in flagged or (g.name, "backlog_over_retention") in flagged
            pend = f"{g.pending:>8}"
            if (g.name, "pending") in flagged or behind:
                pend = red(pend)
            lag = f"{'?' if g.lag is None else g.lag:>8}"
            if (g.name, "lag") in flagged or behind:
                lag = red(lag)
            cons = f"{len(g.consumers):>9}"
            if (g.name, "no_consumer") in flagged:
                cons = red(cons)
            click.echo(f"  └ {g.name:<30} {'':>8} {pend} {lag} {cons}")
            for c in g.consumers:
                click.echo(f"      {c.name:<28} {'':>8} {c.pending:>8} {'':>8} idle {_age(c.idle_ms)}")
    click.echo()
    if status.alerts:
        click.echo(red(f"{len(status.alerts)} alert(s):"))
        for a in status.alerts:
            click.echo(red("  ! ") + a.message)
    else:
        click.echo(click.style("no alerts", fg="green"))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the same data as JSON.")
@click.option("--stream", "streams", multiple=True, help="Only these streams (repeatable).")
def status(as_json: bool, streams: tuple[str, ...]) -> None:
    """Length, pending, lag, consumers, dead letters and alerts of every stream."""

    async def go(bus: EventBus) -> tuple[BusStatus, dict[str, Any]]:
        return await bus.status(list(streams) or None), (await bus.describe()).as_dict()

    snapshot, redis = _run(go)
    if as_json:
        click.echo(json.dumps({**dataclasses.asdict(snapshot), "redis": redis}, indent=2, default=str))
    else:
        _print_status(snapshot, redis)


@main.command()
@click.option("--stream", "streams", multiple=True, help="Only these streams (repeatable).")
def trim(streams: tuple[str, ...]) -> None:
    """Safe trim: drop entries beyond the retention bound that every group has acknowledged."""

    async def go(bus: EventBus) -> list[Any]:
        return [await bus.trim(s) for s in (streams or bus.stream_names())]

    for r in _run(go):
        kept = f", {r.kept_unacked} unacknowledged kept over retention" if r.kept_unacked else ""
        click.echo(f"{r.stream}: removed {r.removed}, length {r.length_after}{kept}")


@main.group()
def group() -> None:
    """Create or destroy consumer groups."""


@group.command("create")
@click.argument("stream")
@click.argument("name")
@click.option("--start", default="new", show_default=True, help="new, all, or an entry id to start after.")
def group_create(stream: str, name: str, start: str) -> None:
    created = _run(lambda bus: bus.create_group(stream, name, start))
    click.echo(f"{'created' if created else 'already exists:'} group {name} on {stream}")


@group.command("destroy")
@click.argument("stream")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Destroy even if the group holds pending (unprocessed) entries.")
def group_destroy(stream: str, name: str, yes: bool, force: bool) -> None:
    if not yes:
        click.confirm(f"Destroy group {name} on {stream}? Its position and pending list are lost", abort=True)
    pending = _run(lambda bus: bus.destroy_group(stream, name, force=force))
    click.echo(f"destroyed group {name} on {stream}" + (f" ({pending} pending entries dropped)" if pending else ""))


@main.group()
def dlq() -> None:
    """Dead letters: list them, replay them into their stream."""


@dlq.command("list")
@click.argument("stream")
@click.option("--count", default=DEFAULT_DLQ_LIST_COUNT, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def dlq_list(stream: str, count: int, as_json: bool) -> None:
    entries = _run(lambda bus: bus.dlq_list(stream, count))
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(e) for e in entries], indent=2))
        return
    if not entries:
        click.echo(f"no dead letters for {stream}")
    for e in entries:
        when = datetime.fromtimestamp(e.dead_lettered_at_ms / 1000, UTC).isoformat(timespec="seconds")
        click.echo(f"{e.dlq_id}  original {e.original_id}  group {e.group}  deliveries {e.delivery_count}  at {when}")
        click.echo(f"    reason: {e.reason}")
        click.echo(f"    payload: {json.dumps(e.payload)[:200]}")


@dlq.command("replay")
@click.argument("stream")
@click.option("--id", "ids", multiple=True, help="Dead-letter id to replay (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Replay every dead letter of the stream.")
def dlq_replay(stream: str, ids: tuple[str, ...], all_: bool) -> None:
    if bool(ids) == all_:
        raise click.UsageError("give --id (one or more) or --all")
    done = _run(lambda bus: bus.dlq_replay(stream, "all" if all_ else list(ids)))
    for r in done:
        click.echo(f"replayed {r.dlq_id} as {r.new_entry_id}")
    click.echo(f"{len(done)} dead letters replayed into {stream}")


def _parse_time(value: str) -> int:
    if value.isdigit():
        return int(value)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use milliseconds since the epoch or an ISO time like 2026-11-26T10:00:00+00:00") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@main.command()
@click.argument("stream")
@click.argument("group_name", metavar="GROUP")
@click.option("--to-id", help="Redeliver entries after this id.")
@click.option("--to-time", help="Redeliver entries published at or after this time (ms or ISO 8601).")
def replay(stream: str, group_name: str, to_id: str | None, to_time: str | None) -> None:
    """Rewind a group so that events are processed again."""
    if (to_id is None) == (to_time is None):
        raise click.UsageError("give exactly one of --to-id or --to-time")
    ms = _parse_time(to_time) if to_time else None
    target = _run(lambda bus: bus.rewind(stream, group_name, to_id=to_id, to_time_ms=ms))
    click.echo(f"group {group_name} on {stream} rewound: entries after {target} will be delivered again")


@main.command()
@click.argument("stream")
@click.argument("payload")
@click.option("--idempotency-key")
@click.option("--source", default="cli")
def publish(stream: str, payload: str, idempotency_key: str | None, source: str) -> None:
    """Publish one JSON object to a stream or channel."""
    try:
        body = json.loads(payload)
    except ValueError as exc:
        raise click.BadParameter(f"PAYLOAD is not JSON: {exc}") from None
    r = _run(lambda bus: bus.publish(PublishRequest(stream, body, event_id=idempotency_key, source=source)))
    click.echo(r.entry_id if r.kind == "stream" else f"published to channel {r.target} ({r.receivers} receivers)")


@main.command("config")
def config_cmd() -> None:
    """Validate the settings and topology, and print them (secrets hidden)."""
    from .core import build_topology

    s = _settings()
    try:
        topo = build_topology(s)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    shown = s.model_dump(mode="json")
    shown["api_keys"] = f"<{len([k for k in s.api_keys.split(',') if k.strip()])} keys>"
    if s.redis_url:
        from urllib.parse import urlparse

        u = urlparse(s.redis_url)
        if u.password:
            shown["redis_url"] = s.redis_url.replace(u.password, "***")
    click.echo(json.dumps({"settings": shown, "streams": {k: dataclasses.asdict(v) for k, v in topo.streams.items()},
                           "channels": list(topo.channels), "redis": _describe_for_config(s)}, indent=2, default=str))


def _describe_for_config(s: Any) -> dict[str, Any]:
    """Which mode, which nodes, which master serves now; the embedded Redis is described, not started."""
    if s.embedded:
        return {"mode": "standalone", "embedded": True, "data_dir": str(s.data_dir),
                "note": "FRIDAY_REDIS_URL unset: `friday serve` starts its own redis-server"}
    from .core.connection import build_client, close_client, describe

    async def go() -> dict[str, Any]:
        client = build_client(s)
        try:
            return (await describe(client, s)).as_dict()
        finally:
            await close_client(client)

    try:
        return asyncio.run(go())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
