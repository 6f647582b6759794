"""Plain data types of the core and its transports (no I/O here).

The result types the client also returns (:class:`EventMeta`, :class:`PublishResult`,
:class:`BusStatus`, ...) are defined once, in the client distribution (``friday_bus_client.models``),
and re-exported here; the core's own request and report types are defined below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from friday_bus_client.models import (
    Alert,
    BusStatus,
    ChannelMessage,
    ConsumerStatus,
    DeadLetter,
    EventMeta,
    GroupStatus,
    JSONObject,
    NackResult,
    PublishResult,
    ReplayResult,
    StreamInfo,
    StreamStatus,
)

__all__ = [
    "Alert", "BusStatus", "ChannelMessage", "ConsumerStatus", "DeadLetter", "Delivery", "EventMeta", "GroupStatus",
    "JSONObject", "NackResult", "PublishRequest", "PublishResult", "ReplayResult", "SetupReport", "StartPosition",
    "StreamInfo", "StreamStatus", "TrimReport",
]

StartPosition = Literal["new", "all"]

@dataclass(frozen=True, slots=True)
class PublishRequest:
    """One event to publish.

    ``target`` is a critical stream or an informational channel name.
    ``event_id`` is the idempotency key: a second publish with the same key within
    the idempotency window returns the first entry id and writes nothing.
    """

    target: str
    payload: JSONObject
    event_id: str | None = None
    source: str | None = None
    correlation_id: str | None = None
    traceparent: str | None = None
    """W3C trace context (checked by ``codec.validate_trace_context``), stored with the event."""
    tracestate: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry handed to a consumer of a group. It stays pending until acked."""

    stream: str
    group: str
    consumer: str
    entry_id: str
    payload: JSONObject
    meta: EventMeta
    delivery_count: int


@dataclass(slots=True)
class SetupReport:
    created_streams: list[str] = field(default_factory=list)
    created_groups: list[tuple[str, str]] = field(default_factory=list)
    existing_groups: list[tuple[str, str]] = field(default_factory=list)
    migrated_keys: int = 0
    """Companion keys moved from the names before issue 8 to the cluster-safe ones (core/admin.py)."""


@dataclass(slots=True)
class TrimReport:
    stream: str
    removed: int
    length_after: int
    kept_unacked: int  # entries beyond the retention bound that were kept because a group has not acked them
    safe_boundary: str | None  # entries strictly before this id were acknowledged by every group
