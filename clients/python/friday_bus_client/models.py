"""Plain result types of the bus, shared by the sidecar and the client (no I/O here).

The sidecar's core returns them and its doors serialise them; the client rebuilds them from the
wire, so an agent gets the same values whether it talks gRPC or embeds the core. The core's own
request and report types live in ``friday_bus.core.models``, which re-exports these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

JSONObject = dict[str, Any]

@dataclass(frozen=True, slots=True)
class EventMeta:
    """Metadata carried next to the payload, in reserved fields.

    ``encoding`` is ``"friday"`` for entries written by the sidecar (types kept exactly)
    and ``"legacy"`` for entries written in the seed's plain format (values are text,
    JSON objects and arrays decoded).
    """

    event_id: str | None = None
    source: str | None = None
    correlation_id: str | None = None
    published_at_ms: int | None = None
    encoding: Literal["friday", "legacy"] = "friday"
    traceparent: str | None = None
    """W3C trace context given by the publisher (None when it gave none, or in the seed wire format)."""
    tracestate: str | None = None


@dataclass(frozen=True, slots=True)
class PublishResult:
    target: str
    kind: Literal["stream", "channel"]
    entry_id: str | None  # stream entry id; None for a channel
    duplicate: bool = False  # True when the idempotency key matched an earlier publish
    receivers: int | None = None  # channel subscribers that got it; None for a stream


@dataclass(frozen=True, slots=True)
class NackResult:
    entry_id: str
    outcome: Literal["retry", "dead_lettered"]
    retry_at_ms: int | None = None  # when it becomes deliverable again (outcome "retry")
    dead_letter_id: str | None = None  # id in the dead-letter stream (outcome "dead_lettered")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry in a stream's dead-letter stream."""

    dlq_id: str
    stream: str
    original_id: str
    group: str
    reason: str
    delivery_count: int
    dead_lettered_at_ms: int
    payload: JSONObject
    meta: EventMeta


@dataclass(frozen=True, slots=True)
class ReplayResult:
    dlq_id: str
    new_entry_id: str


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A stream of the topology as listed by the doors."""

    name: str
    groups: list[str]
    retention: int


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    channel: str
    payload: JSONObject
    meta: EventMeta


@dataclass(slots=True)
class ConsumerStatus:
    name: str
    pending: int
    idle_ms: int


@dataclass(slots=True)
class GroupStatus:
    name: str
    consumers: list[ConsumerStatus]
    pending: int
    lag: int | None  # entries not yet delivered to the group; None if Redis cannot tell
    last_delivered_id: str
    retry_scheduled: int  # nacked entries waiting for their backoff


@dataclass(slots=True)
class Alert:
    stream: str
    group: str | None
    metric: str  # backlog | backlog_over_retention | pending | lag | no_consumer | dead_letters (core/status.py ALERT_METRICS)
    value: int
    threshold: int
    message: str


@dataclass(slots=True)
class StreamStatus:
    name: str
    exists: bool
    length: int
    first_entry_id: str | None
    last_entry_id: str | None
    dead_letter_length: int
    oldest_pending_age_ms: int | None
    groups: list[GroupStatus]
    alerts: list[Alert]


@dataclass(slots=True)
class BusStatus:
    redis_version: str
    streams: list[StreamStatus]
    channels: list[str]
    alerts: list[Alert]
    generated_at_ms: int
