"""Conversions between protobuf messages and core models (pure functions, no I/O).

Payloads cross the gRPC door as JSON text (see the proto): parsed here into the dict the
core validates, and dumped back compactly. ``json`` keeps ints as ints and floats as
floats both ways, so the types an HTTP client sees are the ones a gRPC client sent.
"""

from __future__ import annotations

import json
from typing import Any

from friday_bus_client._proto import eventbus_pb2 as pb

from ..core.codec import loads_json
from ..core.errors import FridayError, InvalidArgument
from ..core.models import (
    Alert,
    BusStatus,
    ChannelMessage,
    DeadLetter,
    Delivery,
    EventMeta,
    NackResult,
    PublishRequest,
    PublishResult,
    StreamInfo,
    StreamStatus,
)

_COMPACT = {"separators": (",", ":"), "ensure_ascii": False}
_compact_encode = json.JSONEncoder(**_COMPACT).encode  # type: ignore[arg-type]  # built once, not per call


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON numbers must be finite)")


def parse_payload(text: str, field: str = "payload_json") -> dict[str, Any]:
    """Parse ``payload_json`` into a dict (refusing a key repeated in any object, with its path:
    ``duplicate key "b" in payload_json.a``); the core validates keys, size and values."""
    if not text:
        raise InvalidArgument(f'{field} is required: the text of a JSON object, e.g. {{"email_id": "abc"}}', field=field)
    try:
        value = loads_json(text, prefix=field, root=field, root_field=field, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidArgument(f"{field} is nested too deeply; flatten it", field=field) from None
    except ValueError as exc:
        raise InvalidArgument(f"{field} is not valid JSON: {exc}", field=field) from None
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"{field} must be a JSON object (got a JSON {type(value).__name__}); wrap scalars, e.g. {{\"value\": ...}}",
            field=field,
        )
    return value


def dump_payload(payload: dict[str, Any]) -> str:
    return _compact_encode(payload)


TraceContext = tuple[str | None, str | None]
NO_TRACE: TraceContext = (None, None)


def trace_context(invocation_metadata: Any) -> TraceContext:
    """(traceparent, tracestate) from a call's metadata (keys ``traceparent``, ``tracestate``),
    as given: the core checks them. Once per call, not per event."""
    traceparent = tracestate = None
    for md in invocation_metadata or ():
        key = md[0]
        if key == "traceparent":
            traceparent = md[1]
        elif key == "tracestate":
            tracestate = md[1]
    return traceparent, tracestate


def publish_request(m: pb.PublishRequest, trace: TraceContext = NO_TRACE) -> PublishRequest:
    return PublishRequest(
        target=m.stream,
        payload=parse_payload(m.payload_json),
        event_id=m.idempotency_key if m.HasField("idempotency_key") else None,
        source=m.source if m.HasField("source") else None,
        correlation_id=m.correlation_id if m.HasField("correlation_id") else None,
        traceparent=trace[0],
        tracestate=trace[1],
    )


def publish_response(r: PublishResult) -> pb.PublishResponse:
    out = pb.PublishResponse(stream=r.target, kind=r.kind, duplicate=r.duplicate)
    if r.entry_id is not None:
        out.id = r.entry_id
    if r.receivers is not None:
        out.receivers = r.receivers
    return out


def metadata(meta: EventMeta) -> pb.EventMetadata:
    out = pb.EventMetadata(encoding=meta.encoding)
    if meta.event_id is not None:
        out.event_id = meta.event_id
    if meta.source is not None:
        out.source = meta.source
    if meta.correlation_id is not None:
        out.correlation_id = meta.correlation_id
    if meta.published_at_ms is not None:
        out.published_at_ms = meta.published_at_ms
    if meta.traceparent is not None:
        out.traceparent = meta.traceparent
        if meta.tracestate is not None:
            out.tracestate = meta.tracestate
    return out


def delivery(d: Delivery) -> pb.Delivery:
    return pb.Delivery(
        stream=d.stream,
        group=d.group,
        consumer=d.consumer,
        id=d.entry_id,
        delivery_count=d.delivery_count,
        payload_json=dump_payload(d.payload),
        metadata=metadata(d.meta),
    )


def nack_response(r: NackResult) -> pb.NackResponse:
    out = pb.NackResponse(id=r.entry_id, outcome=r.outcome)
    if r.retry_at_ms is not None:
        out.retry_at_ms = r.retry_at_ms
    if r.dead_letter_id is not None:
        out.dead_letter_id = r.dead_letter_id
    return out


def error(exc: FridayError) -> pb.Error:
    return pb.Error(kind=exc.kind.value, message=exc.message, retriable=exc.retriable, field=exc.field or "")


def channel_message(m: ChannelMessage) -> pb.ChannelMessage:
    return pb.ChannelMessage(channel=m.channel, payload_json=dump_payload(m.payload), metadata=metadata(m.meta))


def dead_letter(d: DeadLetter) -> pb.DeadLetter:
    return pb.DeadLetter(
        dlq_id=d.dlq_id,
        stream=d.stream,
        original_id=d.original_id,
        group=d.group,
        reason=d.reason,
        delivery_count=max(0, d.delivery_count),
        dead_lettered_at_ms=max(0, d.dead_lettered_at_ms),
        payload_json=dump_payload(d.payload),
        metadata=metadata(d.meta),
    )


def stream_info(i: StreamInfo) -> pb.StreamInfo:
    return pb.StreamInfo(name=i.name, groups=i.groups, retention=i.retention)


def _alert(a: Alert) -> pb.Alert:
    out = pb.Alert(stream=a.stream, metric=a.metric, value=a.value, threshold=a.threshold, message=a.message)
    if a.group is not None:
        out.group = a.group
    return out


def stream_status(s: StreamStatus) -> pb.StreamStatus:
    out = pb.StreamStatus(
        name=s.name,
        exists=s.exists,
        length=s.length,
        dead_letter_length=s.dead_letter_length,
        alerts=[_alert(a) for a in s.alerts],
    )
    if s.first_entry_id is not None:
        out.first_entry_id = s.first_entry_id
    if s.last_entry_id is not None:
        out.last_entry_id = s.last_entry_id
    if s.oldest_pending_age_ms is not None:
        out.oldest_pending_age_ms = s.oldest_pending_age_ms
    for g in s.groups:
        gs = pb.GroupStatus(
            name=g.name,
            pending=g.pending,
            last_delivered_id=g.last_delivered_id,
            retry_scheduled=g.retry_scheduled,
            consumers=[pb.ConsumerStatus(name=c.name, pending=c.pending, idle_ms=max(0, c.idle_ms)) for c in g.consumers],
        )
        if g.lag is not None:
            gs.lag = g.lag
        out.groups.append(gs)
    return out


def status(s: BusStatus) -> pb.StatusResponse:
    return pb.StatusResponse(
        redis_version=s.redis_version,
        streams=[stream_status(x) for x in s.streams],
        channels=list(s.channels),
        alerts=[_alert(a) for a in s.alerts],
        generated_at_ms=s.generated_at_ms,
    )
