"""Friday's existing publisher and consumer wire format, reproduced for the interoperability tests.

The seed's publisher writes one field per key: dicts and lists as JSON text, every other value
as ``str(value)``. Its consumer JSON-decodes values that start with ``{`` or ``[`` and keeps the
rest as text. These helpers do exactly that, with a plain redis-py client.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis


async def seed_publish(r: aioredis.Redis, stream: str, payload: dict[str, Any]) -> str:
    fields = {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in payload.items()}
    return await r.xadd(stream, fields)


def seed_decode(fields: dict[str, str]) -> dict[str, Any]:
    return {k: json.loads(v) if v.startswith(("{", "[")) else v for k, v in fields.items()}


async def seed_consume_one(r: aioredis.Redis, stream: str, group: str, consumer: str) -> tuple[str, dict[str, Any]]:
    events = await r.xreadgroup(groupname=group, consumername=consumer, streams={stream: ">"}, count=1, block=2000)
    assert events, "the seed consumer got nothing"
    _, messages = events[0]
    event_id, fields = messages[0]
    data = seed_decode(fields)
    await r.xack(stream, group, event_id)
    return event_id, data
