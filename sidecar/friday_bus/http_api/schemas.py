"""Request and response bodies of the HTTP API (docs/http-api.md), with examples for OpenAPI.

Request models are strict (a JSON string is not an integer) and refuse unknown fields, so a
typo such as ``idempotencyKey`` is reported instead of silently ignored. They only check
shapes; the core validates again and decides everything else. Converters at the bottom turn
core results into response models.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from ..core.errors import InvalidArgument
from ..core.limits import (
    DEFAULT_READ_COUNT,
    MAX_ACK_IDS,
    MAX_BATCH,
    MAX_BLOCK_MS,
    MAX_META_LENGTH,
    MAX_PAYLOAD_KEYS,
    MAX_READ_COUNT,
    MAX_REASON_LENGTH,
)
from ..core.models import BusStatus, DeadLetter, Delivery, EventMeta, NackResult, PublishResult, StreamStatus


def _u64_pattern() -> str:
    """Regex (no anchors) for decimal text of an unsigned 64-bit integer (leading zeros allowed, <= 20 digits)."""
    top = str(2**64 - 1)
    alts = ["[0-9]{1,19}"]
    for i, ch in enumerate(top):
        d = int(ch)
        if d > 0:
            rest = len(top) - i - 1
            alts.append(top[:i] + (f"[0-{d - 1}]" if d > 1 else "0") + (f"[0-9]{{{rest}}}" if rest else ""))
    alts.append(top)
    return "(?:" + "|".join(alts) + ")"


U64 = _u64_pattern()
# Rust-regex semantics in pydantic: `$` is the end of the text (no trailing newline slips through).
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,200}$"
CONSUMER_PATTERN = r"^[A-Za-z0-9._:@-]{1,200}$"
ENTRY_ID_PATTERN = rf"^{U64}-{U64}$"
START_PATTERN = rf"^(?:new|all|{U64}-{U64})$"
META_PATTERN = r"^[^\x00]+$"  # metadata text: no NUL
JS_SAFE_MAX = 2**53 - 1  # the largest integer a JavaScript client (n8n) holds exactly
PATTERN_HELP = {
    NAME_PATTERN: "use 1 to 200 characters from A-Z a-z 0-9 . _ -",
    CONSUMER_PATTERN: "use 1 to 200 characters from A-Z a-z 0-9 . _ - : @",
    ENTRY_ID_PATTERN: "use a stream entry id '<milliseconds>-<sequence>' (each an unsigned 64-bit integer), e.g. '1717000000000-0'",
    META_PATTERN: "it must not contain NUL characters",
    START_PATTERN: "use 'new', 'all' or an entry id like '1717000000000-0' (each part an unsigned 64-bit integer)",
}
EntryId = Annotated[str, Field(pattern=ENTRY_ID_PATTERN)]


def _json_int(v: Any) -> Any:
    """JSON integers only: 10 and 10.0 are fine, "10", true and 10.5 are not."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a JSON integer (got {_json_type_name(v)})")  # noqa: TRY004 - pydantic reports ValueError
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError("must be a whole number")
        return int(v)
    return v


def _json_type_name(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)


JsonInt = Annotated[int, BeforeValidator(_json_int)]
PAYLOAD_SCHEMA = {
    "type": "object",
    "maxProperties": MAX_PAYLOAD_KEYS,
    "propertyNames": {"minLength": 1, "not": {"pattern": "^_friday"}},
    "description": f"The event: a JSON object (at most FRIDAY_MAX_PAYLOAD_BYTES as JSON, {MAX_PAYLOAD_KEYS} top-level keys). "
    "Keys are non-empty and must not start with '_friday'.",
}


def _valid_unicode(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON can escape lone surrogates (\\udc00) that no UTF-8 text holds: refuse them here, as bad input."""
    stack: list[Any] = [payload]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(
                        "payload holds text that is not valid Unicode (a lone surrogate escape such as \\udc00); send UTF-8 text"
                    ) from None
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return payload


Payload = Annotated[dict[str, Any], AfterValidator(_valid_unicode), WithJsonSchema(PAYLOAD_SCHEMA)]
EX_ID = "1717000000000-0"
EX_PAYLOAD = {"email_id": "abc", "has_attachments": True}
EX_META = {
    "event_id": None, "source": "gmail", "correlation_id": None,
    "published_at": "2024-05-29T16:26:40.000Z", "published_at_ms": 1717000000000, "encoding": "friday",
}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# ---------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    code: Literal[
        "invalid_argument", "unauthenticated", "permission_denied", "not_found", "conflict",
        "backlog_full", "unavailable", "internal",
    ]
    message: str = Field(description="What went wrong and what to fix.")
    retriable: bool = Field(description="True when the same call may succeed later unchanged.")
    field: str | None = Field(None, description="The request field at fault, when there is one.")
    details: dict[str, Any] | None = Field(None, description="Extra facts (e.g. pending count), when any.")


class ErrorBody(BaseModel):
    model_config = _examples(
        {"error": {"code": "invalid_argument", "message": "payload: must be a JSON object", "retriable": False, "field": "payload"}}
    )
    error: ErrorDetail


# ---------------------------------------------------------------- publish
class PublishBody(_Request):
    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [
            {"stream": "email.received", "payload": EX_PAYLOAD},
            {"stream": "email.received", "payload": EX_PAYLOAD, "idempotency_key": "gmail-abc",
             "correlation_id": "req-42", "source": "gmail"},
            {"stream": "file.uploaded", "payload": {"path": "/inbox/a.pdf"}},
        ]},
    )
    stream: str = Field(pattern=NAME_PATTERN, description="A critical stream or an informational channel (the topology decides).")
    payload: Payload
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=MAX_META_LENGTH, pattern=META_PATTERN,
        description="A repeat with the same key within the idempotency window writes nothing and returns the first id.",
    )
    correlation_id: str | None = Field(None, min_length=1, max_length=MAX_META_LENGTH, pattern=META_PATTERN)
    source: str | None = Field(None, min_length=1, max_length=MAX_META_LENGTH, pattern=META_PATTERN)


class PublishOut(BaseModel):
    model_config = _examples(
        {"stream": "email.received", "kind": "stream", "id": EX_ID, "duplicate": False, "receivers": None},
        {"stream": "file.uploaded", "kind": "channel", "id": None, "duplicate": False, "receivers": 2},
    )
    stream: str
    kind: Literal["stream", "channel"]
    id: str | None = Field(description="Entry id (streams); null for a channel.")
    duplicate: bool = Field(description="True when the idempotency key matched an earlier publish (nothing written).")
    receivers: int | None = Field(description="Subscribers that got a channel message; null for a stream.")


class BatchBody(_Request):
    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [{"events": [
            {"stream": "email.received", "payload": EX_PAYLOAD},
            {"stream": "agent.completed", "payload": {"agent": "triage", "ok": True}},
        ]}]},
    )
    events: list[PublishBody] = Field(min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} events, all validated before any is written.")


class BatchOut(BaseModel):
    model_config = _examples({"results": [
        {"stream": "email.received", "kind": "stream", "id": EX_ID, "duplicate": False, "receivers": None},
        {"stream": "agent.completed", "kind": "channel", "id": None, "duplicate": False, "receivers": 0},
    ]})
    results: list[PublishOut]


# ---------------------------------------------------------------- consume
class Metadata(BaseModel):
    model_config = _examples(EX_META)
    event_id: str | None
    source: str | None
    correlation_id: str | None
    published_at: str | None = Field(description="Publish time, ISO 8601 UTC with milliseconds.")
    published_at_ms: int | None
    encoding: Literal["friday", "legacy"] = Field(description="'legacy' for entries written in the seed's plain format.")
    traceparent: str | None = Field(None, description="W3C traceparent the publisher gave (header `traceparent`); null without one.")
    tracestate: str | None = Field(None, description="W3C tracestate the publisher gave; null without one.")


class DeliveryOut(BaseModel):
    model_config = _examples({
        "stream": "email.received", "group": "email-processor", "consumer": "n8n-wf-12", "id": EX_ID,
        "delivery_count": 1, "payload": EX_PAYLOAD, "metadata": EX_META,
    })
    stream: str
    group: str
    consumer: str
    id: str
    delivery_count: int
    payload: dict[str, Any]
    metadata: Metadata


class ReadBody(_Request):
    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [{"consumer": "n8n-wf-12", "count": 10, "block_ms": 0}]},
    )
    consumer: str = Field(pattern=CONSUMER_PATTERN, description="This reader's name; its unacked deliveries stay pending under it.")
    count: JsonInt = Field(DEFAULT_READ_COUNT, ge=1, le=MAX_READ_COUNT, description=f"At most this many deliveries (1 to {MAX_READ_COUNT}).")
    block_ms: JsonInt = Field(
        0, ge=0, le=MAX_BLOCK_MS, description=f"Wait up to this long for a delivery (0 to {MAX_BLOCK_MS} ms; 0: don't wait).",
    )


class ReadOut(BaseModel):
    model_config = _examples({"deliveries": [DeliveryOut.model_config["json_schema_extra"]["examples"][0]]})  # type: ignore[index]
    deliveries: list[DeliveryOut]


class AckBody(_Request):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"ids": [EX_ID]}]})
    ids: list[EntryId] = Field(min_length=1, max_length=MAX_ACK_IDS, description=f"1 to {MAX_ACK_IDS} entry ids.")


class AckOut(BaseModel):
    model_config = _examples({"acked": 1})
    acked: int = Field(description="How many of the ids were pending (others count 0, not an error).")


class ExtendBody(_Request):
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"consumer": "n8n-wf-12", "ids": [EX_ID]}]}
    )
    consumer: str = Field(pattern=CONSUMER_PATTERN, description="The consumer that holds the deliveries.")
    ids: list[EntryId] = Field(min_length=1, max_length=MAX_ACK_IDS, description=f"1 to {MAX_ACK_IDS} entry ids.")


class ExtendOut(BaseModel):
    model_config = _examples({"extended": 1})
    extended: int = Field(description="How many ids were still pending for this consumer (others count 0, not an error).")


class ReleaseItem(_Request):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"id": EX_ID, "delivery_count": 1}]})
    id: str = Field(pattern=ENTRY_ID_PATTERN, description="The delivery's entry id, as read.")
    delivery_count: JsonInt = Field(ge=1, le=JS_SAFE_MAX, description="The delivery_count it was read with.")


class ReleaseBody(_Request):
    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [{"consumer": "n8n-wf-12", "deliveries": [{"id": EX_ID, "delivery_count": 1}]}]},
    )
    consumer: str = Field(pattern=CONSUMER_PATTERN, description="The consumer the deliveries were read as.")
    deliveries: list[ReleaseItem] = Field(
        min_length=1, max_length=MAX_ACK_IDS,
        description=f"1 to {MAX_ACK_IDS} deliveries never handed to a handler: id and delivery_count as read.",
    )


class ReleaseOut(BaseModel):
    model_config = _examples({"released": 1})
    released: int = Field(
        description="How many were given back (others count 0, not an error: acked, reclaimed by another consumer, "
        "delivered again since, or nacked).",
    )


class NackBody(_Request):
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"examples": [{"id": EX_ID, "reason": "attachment could not be parsed"}]}
    )
    id: str = Field(pattern=ENTRY_ID_PATTERN)
    reason: str = Field(min_length=1, description=f"Why it failed; kept with the dead letter (cut to {MAX_REASON_LENGTH} characters).")


class NackOut(BaseModel):
    model_config = _examples(
        {"id": EX_ID, "outcome": "retry", "retry_at_ms": 1717000001000, "dead_letter_id": None},
        {"id": EX_ID, "outcome": "dead_lettered", "retry_at_ms": None, "dead_letter_id": "1717000009000-0"},
    )
    id: str
    outcome: Literal["retry", "dead_lettered"]
    retry_at_ms: int | None
    dead_letter_id: str | None


class NextEvent(BaseModel):
    model_config = _examples({"stream": "email.received", "id": EX_ID, "delivery_count": 0, "payload": EX_PAYLOAD, "metadata": EX_META})
    stream: str
    id: str
    delivery_count: int
    payload: dict[str, Any]
    metadata: Metadata


class NextOut(BaseModel):
    model_config = _examples({"event": NextEvent.model_config["json_schema_extra"]["examples"][0]}, {"event": None})  # type: ignore[index]
    event: NextEvent | None


# ---------------------------------------------------------------- admin
class StreamInfo(BaseModel):
    name: str
    groups: list[str]
    retention: int


class StreamsOut(BaseModel):
    model_config = _examples({"streams": [{"name": "email.received", "groups": ["email-processor"], "retention": 10000}]})
    streams: list[StreamInfo]


class ChannelsOut(BaseModel):
    model_config = _examples({"channels": ["agent.completed", "file.uploaded"]})
    channels: list[str]


class GroupRef(BaseModel):
    stream: str
    name: str


class GroupsOut(BaseModel):
    model_config = _examples({"groups": [{"stream": "email.received", "name": "email-processor"}]})
    groups: list[GroupRef]


class ConsumerOut(BaseModel):
    name: str
    pending: int
    idle_ms: int


class GroupStatusOut(BaseModel):
    name: str
    consumers: list[ConsumerOut]
    pending: int
    lag: int | None
    last_delivered_id: str
    retry_scheduled: int


class AlertOut(BaseModel):
    stream: str
    group: str | None
    metric: str
    value: int
    threshold: int
    message: str


EX_STREAM_STATUS = {
    "name": "email.received", "exists": True, "length": 3, "first_entry_id": EX_ID, "last_entry_id": "1717000000002-0",
    "dead_letter_length": 0, "oldest_pending_age_ms": None,
    "groups": [{"name": "email-processor", "consumers": [{"name": "w1", "pending": 0, "idle_ms": 1200}],
                "pending": 0, "lag": 0, "last_delivered_id": "1717000000002-0", "retry_scheduled": 0}],
    "alerts": [],
}


class StreamStatusOut(BaseModel):
    model_config = _examples(EX_STREAM_STATUS)
    name: str
    exists: bool
    length: int
    first_entry_id: str | None
    last_entry_id: str | None
    dead_letter_length: int
    oldest_pending_age_ms: int | None
    groups: list[GroupStatusOut]
    alerts: list[AlertOut]


class StatusOut(BaseModel):
    model_config = _examples({
        "redis_version": "7.2.4", "streams": [EX_STREAM_STATUS], "channels": ["agent.completed", "file.uploaded"],
        "alerts": [{"stream": "email.received", "group": "email-processor", "metric": "backlog", "value": 1200, "threshold": 1000,
                    "message": "email-processor on email.received has 1200 entries not acknowledged yet "
                               "(1180 not delivered, 20 pending; > 1000): backlog"}],
        "generated_at_ms": 1717000000000,
    })
    redis_version: str
    streams: list[StreamStatusOut]
    channels: list[str]
    alerts: list[AlertOut]
    generated_at_ms: int


class CreateGroupBody(_Request):
    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"examples": [{"group": "n8n-email", "start": "new"}, {"group": "audit", "start": "all"}]},
    )
    group: str = Field(pattern=NAME_PATTERN)
    start: str = Field("new", pattern=START_PATTERN, description="'new' (from now on), 'all' (whole history) or an entry id (after it).")


class CreatedOut(BaseModel):
    model_config = _examples({"created": True})
    created: bool


class DestroyedOut(BaseModel):
    model_config = _examples({"destroyed": True, "pending_dropped": 0})
    destroyed: bool
    pending_dropped: int = Field(description="Pending entries the group held (only non-zero with force=true).")


class RewindBody(_Request):
    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={
            "examples": [{"to_id": EX_ID}, {"to_time_ms": 1717000000000}],
            "oneOf": [{"required": ["to_id"]}, {"required": ["to_time_ms"]}],
        },
    )
    to_id: Annotated[str | None, WithJsonSchema({
        "type": "string", "pattern": ENTRY_ID_PATTERN, "description": "Entries after this id are delivered again.",
    })] = Field(None, pattern=ENTRY_ID_PATTERN)
    to_time_ms: Annotated[JsonInt | None, WithJsonSchema({
        "type": "integer", "minimum": 0, "maximum": JS_SAFE_MAX,
        "description": "Entries published at or after this Unix time (ms) are delivered again. A target "
        "in the future (after now and after the stream's last entry) is refused: the group would skip every event "
        "published until then.",
    })] = Field(None, ge=0, le=JS_SAFE_MAX)

    @field_validator("to_id", "to_time_ms", mode="before")
    @classmethod
    def _no_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("omit the field rather than sending null; give exactly one of to_id or to_time_ms")
        return v


class RewindOut(BaseModel):
    model_config = _examples({"rewound": True, "last_delivered_id": EX_ID})
    rewound: bool
    last_delivered_id: str = Field(description="The group's new last-delivered id.")


class DeadLetterOut(BaseModel):
    dlq_id: str
    stream: str
    original_id: str
    group: str
    reason: str
    delivery_count: int
    dead_lettered_at_ms: int
    payload: dict[str, Any]
    metadata: Metadata


class DlqOut(BaseModel):
    model_config = _examples({"entries": [{
        "dlq_id": "1717000009000-0", "stream": "email.received", "original_id": EX_ID, "group": "email-processor",
        "reason": "attachment could not be parsed", "delivery_count": 5, "dead_lettered_at_ms": 1717000009000,
        "payload": EX_PAYLOAD, "metadata": EX_META,
    }]})
    entries: list[DeadLetterOut]


REPLAY_WHAT = "name the dead letters to replay (ids), or set all to true"
"""The one answer to a replay body that does not say what to replay (no body, {}, all false without ids, both)."""


class ReplayBody(_Request):
    """What to replay, said explicitly: a forgotten body never replays every dead letter."""

    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={
            "examples": [{"ids": ["1717000009000-0"]}, {"all": True}],
            "oneOf": [{"required": ["ids"]}, {"required": ["all"], "properties": {"all": {"const": True}}}],
        },
    )
    ids: Annotated[list[EntryId] | None, WithJsonSchema({
        "type": "array", "items": {"type": "string", "pattern": ENTRY_ID_PATTERN}, "minItems": 1, "maxItems": MAX_ACK_IDS,
        "description": f"The dead-letter ids to replay (1 to {MAX_ACK_IDS}). Give either ids or all=true.",
    })] = Field(None, max_length=MAX_ACK_IDS)
    all: bool = Field(False, description="true: replay every dead letter of the stream. Give either ids or all=true.")

    @field_validator("ids", mode="before")
    @classmethod
    def _no_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError(f"omit the field rather than sending null; {REPLAY_WHAT}")
        return v

    def target(self) -> list[str] | Literal["all"]:
        """The core's ``ids`` argument; raises InvalidArgument unless exactly one of ids / all=true is given."""
        if bool(self.ids) == self.all:
            raise InvalidArgument(REPLAY_WHAT, field="ids")
        return "all" if self.all else list(self.ids or ())


class ReplayItem(BaseModel):
    dlq_id: str
    new_id: str


class ReplayOut(BaseModel):
    model_config = _examples({"replayed": [{"dlq_id": "1717000009000-0", "new_id": "1717000010000-0"}]})
    replayed: list[ReplayItem]


class HealthOut(BaseModel):
    model_config = _examples({"status": "ok"})
    status: Literal["ok"]


class ReadyOut(BaseModel):
    model_config = _examples({"status": "ready", "redis_version": "7.2.4", "mode": "sentinel", "masters": ["10.0.0.5:6379"]})
    status: Literal["ready"]
    redis_version: str
    mode: Literal["standalone", "cluster", "sentinel"] | None = Field(
        default=None, description="FRIDAY_REDIS_MODE: standalone, cluster or sentinel.")
    masters: list[str] | None = Field(
        default=None, description="host:port of the master(s) serving now: one, or one per shard on a cluster.")


# ---------------------------------------------------------------- converters (core → wire)
def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def metadata(meta: EventMeta) -> Metadata:
    return Metadata(
        event_id=meta.event_id, source=meta.source, correlation_id=meta.correlation_id,
        published_at=_iso(meta.published_at_ms), published_at_ms=meta.published_at_ms, encoding=meta.encoding,
        traceparent=meta.traceparent, tracestate=meta.tracestate,
    )


def publish_out(r: PublishResult) -> PublishOut:
    return PublishOut(stream=r.target, kind=r.kind, id=r.entry_id, duplicate=r.duplicate, receivers=r.receivers)


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        stream=d.stream, group=d.group, consumer=d.consumer, id=d.entry_id, delivery_count=d.delivery_count,
        payload=d.payload, metadata=metadata(d.meta),
    )


def next_out(d: Delivery | None) -> NextOut:
    if d is None:
        return NextOut(event=None)
    return NextOut(event=NextEvent(stream=d.stream, id=d.entry_id, delivery_count=0, payload=d.payload, metadata=metadata(d.meta)))


def nack_out(r: NackResult) -> NackOut:
    return NackOut(id=r.entry_id, outcome=r.outcome, retry_at_ms=r.retry_at_ms, dead_letter_id=r.dead_letter_id)


def dead_letter_out(d: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(
        dlq_id=d.dlq_id, stream=d.stream, original_id=d.original_id, group=d.group, reason=d.reason,
        delivery_count=d.delivery_count, dead_lettered_at_ms=d.dead_lettered_at_ms, payload=d.payload, metadata=metadata(d.meta),
    )


def stream_status_out(s: StreamStatus) -> StreamStatusOut:
    return StreamStatusOut.model_validate(dataclasses.asdict(s))


def status_out(s: BusStatus) -> StatusOut:
    return StatusOut.model_validate(dataclasses.asdict(s))
