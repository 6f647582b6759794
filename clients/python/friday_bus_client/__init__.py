"""Async Python client of the Friday sidecar (gRPC), for agents. See :class:`FridayClient`.

Depends on grpcio and protobuf only. The error classes (:mod:`.errors`), result values
(:mod:`.models`) and wire limits (:mod:`.limits`) are plain modules the sidecar imports too;
the client's calls (:class:`FridayClient` and what it returns) are imported on first use, so
``import friday_bus_client.errors`` does not load grpc's asyncio stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import BacklogFull, Conflict, FridayError, InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unavailable
from .models import BusStatus, ChannelMessage, DeadLetter, EventMeta, NackResult, PublishResult, ReplayResult, StreamInfo

if TYPE_CHECKING:
    from .client import FridayClient
    from .convert import Event
    from .subscription import Delivery, Subscription

_LAZY = {"FridayClient": ".client", "Event": ".convert", "Delivery": ".subscription", "Subscription": ".subscription"}

__all__ = [
    "BacklogFull", "BusStatus", "ChannelMessage", "Conflict", "DeadLetter", "Delivery", "Event", "EventMeta",
    "FridayClient", "FridayError", "InvalidArgument", "NackResult", "NotFound", "PermissionDenied", "PublishResult",
    "ReplayResult", "StreamInfo", "Subscription", "Unauthenticated", "Unavailable",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
