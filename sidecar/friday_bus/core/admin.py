"""Administration: setup of the topology, consumer groups (create, destroy, list, rewind),
dead letters (list, replay), retention (safe boundary, trim), the recovery sweep and idle
consumers. The contracts are on the :class:`~friday_bus.core.bus.EventBus` methods."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from redis import exceptions as rexc

from . import codec, names
from .consuming import dead_letter_unconfirmed
from .context import BusContext, check_read_args, now_ms
from .errors import Conflict, InvalidArgument, NotFound
from .limits import SWEEP_CHUNK, TRIM_CHUNK
from .models import DeadLetter, ReplayResult, SetupReport, StreamInfo, TrimReport
from .replies import reply_kind

log = logging.getLogger("friday.bus")

_TOP = f"{names.U64_MAX}-{names.U64_MAX}"

KEY_NAMES = "tagged"
"""Marks (in the setup hash) that the companion keys carry the stream's hash tag (core/keys.py)."""

# KEYS: old name, new name. Returns 'none' (no old key), 'renamed', 'merged' or 'kept' (types differ).
MIGRATE_KEY = r"""
local old, new = KEYS[1], KEYS[2]
if redis.call('EXISTS', old) == 0 then return 'none' end
if redis.call('EXISTS', new) == 0 then
  redis.call('RENAME', old, new)
  return 'renamed'
end
local t = redis.call('TYPE', old)['ok']
if t ~= redis.call('TYPE', new)['ok'] then return 'kept' end
if t == 'zset' then
  local items = redis.call('ZRANGE', old, 0, -1, 'WITHSCORES')
  for i = 1, #items, 2 do redis.call('ZADD', new, 'NX', items[i + 1], items[i]) end
elseif t == 'hash' then
  local items = redis.call('HGETALL', old)
  for i = 1, #items, 2 do redis.call('HSETNX', new, items[i], items[i + 1]) end
elseif t == 'stream' then
  for _, e in ipairs(redis.call('XRANGE', old, '-', '+')) do redis.call('XADD', new, '*', unpack(e[2])) end
elseif t ~= 'string' then
  return 'kept'
end
redis.call('DEL', old)
return 'merged'
"""


def _glob_prefix(prefix: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in prefix)


def _is_name(text: str) -> bool:
    try:
        names.check_stream(text)
    except InvalidArgument:
        return False
    return True


def _dead_letter(stream: str, dlq_id: str, fields: dict[str, str]) -> DeadLetter:
    original = codec.strip_dead_letter_fields(fields)
    original_id = fields.get(codec.F_DLQ_ORIGINAL_ID, dlq_id)
    payload, meta = codec.decode_event(original_id, original)

    def _int(v: str | None) -> int:
        try:
            return int(v or 0)
        except ValueError:
            return 0

    return DeadLetter(
        dlq_id=dlq_id,
        stream=stream,
        original_id=original_id,
        group=fields.get(codec.F_DLQ_GROUP, ""),
        reason=fields.get(codec.F_DLQ_REASON, ""),
        delivery_count=_int(fields.get(codec.F_DLQ_DELIVERIES)),
        dead_lettered_at_ms=_int(fields.get(codec.F_DLQ_AT)),
        payload=payload,
        meta=meta,
    )


class Admin:
    def __init__(self, ctx: BusContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ setup
    async def setup(self, start: Literal["new", "all"]) -> SetupReport:
        ctx = self.ctx
        report = SetupReport()
        for cfg in ctx.topology.streams.values():
            existed = bool(await ctx.redis.exists(cfg.name))
            for group in cfg.groups:
                if await ctx.create_group(cfg.name, group, "$" if start == "new" else "0"):
                    report.created_groups.append((cfg.name, group))
                else:
                    report.existing_groups.append((cfg.name, group))
            if not existed:
                if not cfg.groups:
                    # a stream needs an entry or a group to exist; make it exist empty
                    await ctx.redis.xgroup_create(cfg.name, "friday-setup", "$", mkstream=True)
                    await ctx.redis.xgroup_destroy(cfg.name, "friday-setup")
                report.created_streams.append(cfg.name)
        if ctx.mode != "cluster" and await ctx.redis.hget(ctx.keys.setup, "key_names") != KEY_NAMES:
            report.migrated_keys = await self.migrate_legacy_keys()
        await ctx.redis.hset(ctx.keys.setup, mapping={"at_ms": now_ms(), "streams": len(ctx.topology.streams), "key_names": KEY_NAMES})
        return report

    async def migrate_legacy_keys(self) -> int:
        """Move companion keys written under the names before issue 8 (``friday:dlq:email.received``)
        to the tagged names (``friday:dlq:{email.received}``), in place. Returns how many moved.

        Standalone and sentinel only (a cluster never had them: the sidecar refused clusters
        before). One SCAN of ``FRIDAY_KEY_PREFIX*``; each old key is handled by one atomic script:
        new name free: RENAME (keeps its TTL: idempotency keys expire as before); both exist
        (an old sidecar kept writing after an upgrade): merged into the new one, old deleted:
        retry schedule ZADD NX and nack reasons HSETNX (the new one's values win), dead letters
        appended to the new dead-letter stream (new ids; the old ids are logged), idempotency
        key: the new one is kept (it dedupes the event already). Idempotent: nothing left to move
        the second time; setup marks the key naming in the setup hash and skips the SCAN after.
        Run it with the old sidecars stopped, or they keep writing the old names."""
        ctx = self.ctx
        legacy = ctx.keys.legacy
        script = ctx.redis.register_script(MIGRATE_KEY)
        moved = 0
        async for key in ctx.redis.scan_iter(match=_glob_prefix(ctx.keys.prefix) + "*", count=1000):
            new = self._new_name(key)
            if new is None:
                continue
            outcome = await script(keys=[key, new])
            if outcome == "none":
                continue
            moved += 1
            if outcome == "merged":
                log.warning("setup: %s and %s both existed: merged into %s (the new name's values kept where both had one)", key, new, new)
            elif outcome == "kept":
                log.error("setup: %s and %s both exist with different types: %s left as it is; inspect it", key, new, key)
                moved -= 1
        if moved:
            log.warning("setup: moved %d companion keys to the cluster-safe names (%sdlq:{stream}...)", moved, legacy.prefix)
        return moved

    def _new_name(self, key: str) -> str | None:
        """The tagged name of an old-style companion key, or None (already tagged, not ours)."""
        keys = self.ctx.keys
        rest = key[len(keys.prefix):]
        kind, sep, tail = rest.partition(":")
        if not sep or not tail or tail.startswith("{") or kind not in ("dlq", "retry", "reasons", "idem"):
            return None
        if kind == "dlq":
            return keys.dlq(tail) if _is_name(tail) else None
        stream, sep, rest2 = tail.partition(":")  # stream names hold no ':'
        if not sep or not rest2 or not _is_name(stream):
            return None
        if kind == "idem":
            return keys.idem(stream, rest2)
        if not _is_name(rest2):
            return None
        return keys.retry(stream, rest2) if kind == "retry" else keys.reasons(stream, rest2)

    async def is_setup(self) -> bool:
        return bool(await self.ctx.redis.exists(self.ctx.keys.setup))

    # ------------------------------------------------------------------ groups
    async def create_group(self, stream: str, group: str, start: str) -> bool:
        self.ctx.stream_config(stream)
        names.check_group(group)
        if start == "new":
            start_id = "$"
        elif start == "all":
            start_id = "0"
        else:
            start_id = names.check_entry_id(start, "start")
        return await self.ctx.create_group(stream, group, start_id, confirm=True)

    async def destroy_group(self, stream: str, group: str, force: bool) -> int:
        ctx = self.ctx
        ctx.stream_config(stream)
        names.check_group(group)
        groups = {g["name"]: g for g in await ctx.xinfo_groups(stream)}
        if group not in groups:
            raise NotFound(f"group {group!r} does not exist on stream {stream!r}", field="group")
        pending = int(groups[group]["pending"])
        if pending and not force:
            raise Conflict(
                f"group {group!r} holds {pending} pending entries; process or dead-letter them first, or force the destroy",
                details={"pending": pending},
            )
        await ctx.redis.xgroup_destroy(stream, group)
        await ctx.redis.delete(ctx.keys.retry(stream, group), ctx.keys.reasons(stream, group))
        ctx.forget_groups(stream)
        return pending

    async def list_groups(self, stream: str | None) -> list[tuple[str, str]]:
        streams = [stream] if stream else self.ctx.stream_names()
        out: list[tuple[str, str]] = []
        for s in streams:
            cfg = self.ctx.stream_config(s)
            found = [g["name"] for g in await self.ctx.xinfo_groups(s)]
            for g in list(cfg.groups) + [g for g in found if g not in cfg.groups]:
                out.append((s, g))
        return out

    async def list_streams(self) -> list[StreamInfo]:
        groups: dict[str, list[str]] = {}
        for stream, group in await self.list_groups(None):
            groups.setdefault(stream, []).append(group)
        return [
            StreamInfo(name=n, groups=groups.get(n, []), retention=self.ctx.stream_config(n).retention)
            for n in self.ctx.stream_names()
        ]

    async def rewind(self, stream: str, group: str, to_id: str | None, to_time_ms: int | None) -> str:
        self.ctx.stream_config(stream)
        names.check_group(group)
        if (to_id is None) == (to_time_ms is None):
            raise InvalidArgument("give exactly one of to_id or to_time_ms", field="to_id")
        if to_id is not None:
            target = names.check_entry_id(to_id, "to_id")
        else:
            if isinstance(to_time_ms, bool) or not isinstance(to_time_ms, int) or not 0 <= to_time_ms <= names.U64_MAX:
                raise InvalidArgument("to_time_ms must be a Unix time in milliseconds", field="to_time_ms")
            target = names.id_before_time(to_time_ms)
        await self._check_rewind_target(stream, group, target, to_id, to_time_ms)
        try:
            await self.ctx.redis.xgroup_setid(stream, group, target)
        except rexc.ResponseError as exc:
            if reply_kind(exc).missing:
                raise NotFound(f"group {group!r} does not exist on stream {stream!r}", field="group") from exc
            raise
        return target

    async def _check_rewind_target(
        self, stream: str, group: str, target: str, to_id: str | None, to_time_ms: int | None
    ) -> None:
        """Refuse a position beyond the stream's last entry AND beyond now: the group would skip
        every event published until then (and its lag would read 0). The last entry is the
        stream's last generated id (0-0 for a stream that never had one), or the group's own
        position if it is further (a group already there may stay, or be brought back). "Now" is
        the later of the sidecar's and Redis's clocks (Redis's decides the ids of new entries).
        Raises NotFound (no such group or stream), InvalidArgument."""
        ctx = self.ctx
        groups = {g["name"]: g for g in await ctx.xinfo_groups(stream)}
        if group not in groups:
            raise NotFound(f"group {group!r} does not exist on stream {stream!r}", field="group")
        try:
            info = await ctx.redis.xinfo_stream(stream)
        except rexc.ResponseError as exc:
            if reply_kind(exc).missing:
                raise NotFound(f"group {group!r} does not exist on stream {stream!r}", field="group") from exc
            raise
        last = max(str(info.get("last-generated-id") or "0-0"), str(groups[group]["last-delivered-id"]), key=names.id_key)
        if names.id_key(target) <= names.id_key(last):
            return
        seconds, micros = await ctx.redis.time()
        now = max(now_ms(), int(seconds) * 1000 + int(micros) // 1000)
        if names.id_key(target) <= names.id_key(names.id_before_time(now)):
            return  # after the last entry, but in the past: entries published from now on come after it
        if to_time_ms is not None:
            raise InvalidArgument(
                f"to_time_ms {to_time_ms} is in the future (now is {now}): the group would skip every event "
                "published until then, and its lag would read 0. Give a time up to now (entries published "
                "at or after it are delivered again)",
                field="to_time_ms",
            )
        raise InvalidArgument(
            f"to_id {to_id} is after the stream's last entry {last} and in the future (now is {now}): the group "
            f"would skip every event published until then, and its lag would read 0. Give an id up to {last} "
            "(entries after it are delivered again)",
            field="to_id",
        )

    # ------------------------------------------------------------------ dead letters
    async def dlq_list(self, stream: str, count: int, after: str | None) -> list[DeadLetter]:
        self.ctx.stream_config(stream)
        check_read_args(count, 0)
        start = "-" if after is None else "(" + names.check_entry_id(after, "after")
        entries = await self.ctx.redis.xrange(self.ctx.keys.dlq(stream), start, "+", count=count)
        return [_dead_letter(stream, eid, fields) for eid, fields in entries]

    async def dlq_replay(self, stream: str, ids: Sequence[str] | Literal["all"]) -> list[ReplayResult]:
        ctx = self.ctx
        ctx.stream_config(stream)
        dlq = ctx.keys.dlq(stream)
        if isinstance(ids, str):
            if ids != "all":
                raise InvalidArgument(f"ids must be a list of dead-letter ids or 'all' (got {ids!r})", field="ids")
            todo = [eid for eid, _ in await ctx.redis.xrange(dlq, "-", "+")]
        else:
            if not ids:
                raise InvalidArgument("name the dead letters to replay (ids), or say all to replay every one", field="ids")
            for i in ids:
                names.check_entry_id(i, "ids")
            for i in ids:
                if not await ctx.redis.xrange(dlq, i, i):
                    raise NotFound(f"{i} is not in the dead-letter stream of {stream!r}", field="ids")
            todo = list(ids)
        out = []
        for i in todo:
            new_id = await ctx.scripts.replay(keys=[dlq, stream], args=[i, codec.F_REPLAYED_FROM])
            if new_id:
                out.append(ReplayResult(dlq_id=i, new_entry_id=new_id))
        return out

    # ------------------------------------------------------------------ retention & recovery
    async def safe_boundary(self, stream: str) -> str:
        boundary = _TOP
        for g in await self.ctx.xinfo_groups(stream):
            b = names.next_id(g["last-delivered-id"])
            if int(g["pending"]) > 0:
                summary = await self.ctx.redis.xpending(stream, g["name"])
                if summary and summary.get("min"):
                    b = min(b, summary["min"], key=names.id_key)
            boundary = min(boundary, b, key=names.id_key)
        return boundary

    async def trim(self, stream: str) -> TrimReport:
        cfg = self.ctx.stream_config(stream)
        boundary = await self.safe_boundary(stream)
        removed = 0
        length = int(await self.ctx.redis.xlen(stream))
        while True:
            n, length = await self.ctx.scripts.safe_trim(keys=[stream], args=[cfg.retention, boundary, TRIM_CHUNK])
            removed += int(n)
            if int(n) < TRIM_CHUNK:
                break
        length = int(length)
        return TrimReport(
            stream=stream,
            removed=removed,
            length_after=length,
            kept_unacked=max(0, length - cfg.retention),
            safe_boundary=None if boundary == _TOP else boundary,
        )

    async def sweep_dead(self, stream: str) -> int:
        ctx = self.ctx
        cfg = ctx.stream_config(stream)
        total = 0
        for g in await ctx.xinfo_groups(stream):
            if int(g["pending"]) == 0:
                continue
            group = g["name"]
            ack = await ctx.acked_script(
                ctx.scripts.sweep, ctx.keys.group_keys(stream, group),
                [group, now_ms(), cfg.max_deliveries, cfg.claim_idle_ms, SWEEP_CHUNK],
            )
            dead, gone = ack.result
            if dead:
                dead_letter_unconfirmed(ctx, ack, stream, group, int(dead))
                ctx.observer.dead_lettered(stream, group, int(dead))
                log.warning("stream %s group %s: %d entries dead-lettered by the recovery sweep", stream, group, dead)
            if gone:
                ctx.observer.gone(stream, group, int(gone))
            total += int(dead)
        return total

    async def remove_idle_consumers(self, stream: str, max_idle_ms: int) -> list[tuple[str, str]]:
        ctx = self.ctx
        ctx.stream_config(stream)
        removed = []
        for g in await ctx.xinfo_groups(stream):
            for c in await ctx.redis.xinfo_consumers(stream, g["name"]):
                if int(c["pending"]) == 0 and int(c["idle"]) >= max_idle_ms:
                    ok = await ctx.scripts.delete_idle_consumer(keys=[stream], args=[g["name"], c["name"], max_idle_ms])
                    if int(ok):
                        removed.append((g["name"], c["name"]))
        return removed
