from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from friday_bus.core import EventBus, Settings, build_topology


@pytest.fixture
async def make_bus(redis_server, uniq) -> AsyncIterator[Callable[..., Any]]:
    """Build buses on the test Redis with a per-test topology: stream names get the unique prefix."""
    buses: list[EventBus] = []

    async def factory(streams: dict[str, Any] | None = None, channels: list[str] | None = None, **settings: Any) -> EventBus:
        settings.setdefault("redis_url", redis_server.url)
        settings.setdefault("key_prefix", f"friday:{uniq}:")
        s = Settings(_env_file=None, **settings)
        spec = streams if streams is not None else {"events": ["workers"]}
        data = {
            "streams": {f"{uniq}.{name}": v for name, v in spec.items()},
            "channels": [f"{uniq}.{c}" for c in (channels or ["info"])],
        }
        bus = EventBus.from_url(s.redis_url, s, build_topology(s, data))
        await bus.check_server()
        buses.append(bus)
        return bus

    yield factory
    for b in buses:
        await b.close()
