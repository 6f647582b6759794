"""Conversions between the client's values and protobuf messages (pure functions, no I/O).

Payloads cross the wire as compact JSON text; ints stay ints and floats floats both ways.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._proto import eventbus_pb2 as pb
from .models import (
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


@dataclass(frozen=True, slots=True)
class Event:
    """One event of :meth:`FridayClient.publish_batch`."""

    stream: str
    payload: JSONObject
    idempotency_key: str | None = None
    correlation_id: str | None = None
    source: str | None = None


# ---------------------------------------------------------------------------- to messages


def dumps(payload: Mapping[str, Any]) -> str:
    """``payload`` as compact JSON text. Raises TypeError if it is not a mapping, ValueError
    for what JSON cannot carry (NaN, infinities)."""
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping (a JSON object), got {type(payload).__name__}")
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def publish_message(stream: str, payload: Mapping[str, Any], idempotency_key: str | None,
                    correlation_id: str | None, source: str | None) -> pb.PublishRequest:
    m = pb.PublishRequest(stream=stream, payload_json=dumps(payload))
    if idempotency_key is not None:
        m.idempotency_key = idempotency_key
    if correlation_id is not None:
        m.correlation_id = correlation_id
    if source is not None:
        m.source = source
    return m


def event_message(e: Event | Mapping[str, Any]) -> pb.PublishRequest:
    """An :class:`Event`, or a mapping with the keys of :meth:`FridayClient.publish`, as a message."""
    if isinstance(e, Event):
        return publish_message(e.stream, e.payload, e.idempotency_key, e.correlation_id, e.source)
    return publish_message(e["stream"], e["payload"], e.get("idempotency_key"), e.get("correlation_id"), e.get("source"))


# ---------------------------------------------------------------------------- from messages


def meta(m: pb.EventMetadata) -> EventMeta:
    return EventMeta(
        event_id=m.event_id if m.HasField("event_id") else None,
        source=m.source if m.HasField("source") else None,
        correlation_id=m.correlation_id if m.HasField("correlation_id") else None,
        published_at_ms=m.published_at_ms if m.HasField("published_at_ms") else None,
        encoding="legacy" if m.encoding == "legacy" else "friday",
        traceparent=m.traceparent if m.HasField("traceparent") else None,
        tracestate=m.tracestate if m.HasField("tracestate") else None,
    )


def publish_result(r: pb.PublishResponse) -> PublishResult:
    return PublishResult(
        target=r.stream,
        kind="channel" if r.kind == "channel" else "stream",
        entry_id=r.id if r.HasField("id") else None,
        duplicate=r.duplicate,
        receivers=r.receivers if r.HasField("receivers") else None,
    )


def nack_result(r: pb.NackResponse) -> NackResult:
    return NackResult(
        entry_id=r.id,
        outcome="dead_lettered" if r.outcome == "dead_lettered" else "retry",
        retry_at_ms=r.retry_at_ms if r.HasField("retry_at_ms") else None,
        dead_letter_id=r.dead_letter_id if r.HasField("dead_letter_id") else None,
    )


def channel_message(m: pb.ChannelMessage) -> ChannelMessage:
    return ChannelMessage(channel=m.channel, payload=json.loads(m.payload_json), meta=meta(m.metadata))


def alert(a: pb.Alert) -> Alert:
    return Alert(a.stream, a.group if a.HasField("group") else None, a.metric, a.value, a.threshold, a.message)


def stream_status(s: pb.StreamStatus) -> StreamStatus:
    return StreamStatus(
        name=s.name,
        exists=s.exists,
        length=s.length,
        first_entry_id=s.first_entry_id if s.HasField("first_entry_id") else None,
        last_entry_id=s.last_entry_id if s.HasField("last_entry_id") else None,
        dead_letter_length=s.dead_letter_length,
        oldest_pending_age_ms=s.oldest_pending_age_ms if s.HasField("oldest_pending_age_ms") else None,
        groups=[
            GroupStatus(
                name=g.name,
                consumers=[ConsumerStatus(c.name, c.pending, c.idle_ms) for c in g.consumers],
                pending=g.pending,
                lag=g.lag if g.HasField("lag") else None,
                last_delivered_id=g.last_delivered_id,
                retry_scheduled=g.retry_scheduled,
            )
            for g in s.groups
        ],
        alerts=[alert(a) for a in s.alerts],
    )


def bus_status(r: pb.StatusResponse) -> BusStatus:
    return BusStatus(
        redis_version=r.redis_version,
        streams=[stream_status(s) for s in r.streams],
        channels=list(r.channels),
        alerts=[alert(a) for a in r.alerts],
        generated_at_ms=r.generated_at_ms,
    )


def dead_letter(d: pb.DeadLetter) -> DeadLetter:
    return DeadLetter(d.dlq_id, d.stream, d.original_id, d.group, d.reason, d.delivery_count, d.dead_lettered_at_ms,
                      json.loads(d.payload_json), meta(d.metadata))


def replay_result(r: pb.Replayed) -> ReplayResult:
    return ReplayResult(r.dlq_id, r.new_id)


def stream_info(s: pb.StreamInfo) -> StreamInfo:
    return StreamInfo(s.name, list(s.groups), s.retention)
