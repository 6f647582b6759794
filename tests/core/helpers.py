"""Helpers of the core tests."""

from __future__ import annotations

from friday_bus.core import PublishRequest

FAST = {"claim_interval_ms": 50}


async def pub(bus, stream, payload, **kw):
    return (await bus.publish(PublishRequest(stream, payload, **kw))).entry_id


async def blocked_xreads(bus) -> int:
    """How many clients Redis holds blocked in an XREAD (a peek), from CLIENT LIST."""
    return sum(1 for c in await bus.redis.client_list() if c.get("cmd") == "xread" and "b" in c.get("flags", ""))
