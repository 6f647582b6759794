"""Helpers of the core tests."""

from __future__ import annotations

from friday_bus.core import PublishRequest

FAST = {"claim_interval_ms": 50}


async def pub(bus, stream, payload, **kw):
    return (await bus.publish(PublishRequest(stream, payload, **kw))).entry_id
