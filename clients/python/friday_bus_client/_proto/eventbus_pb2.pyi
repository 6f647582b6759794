from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventMetadata(_message.Message):
    __slots__ = ("event_id", "source", "correlation_id", "published_at_ms", "encoding", "traceparent", "tracestate")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    source: str
    correlation_id: str
    published_at_ms: int
    encoding: str
    traceparent: str
    tracestate: str
    def __init__(self, event_id: _Optional[str] = ..., source: _Optional[str] = ..., correlation_id: _Optional[str] = ..., published_at_ms: _Optional[int] = ..., encoding: _Optional[str] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("kind", "message", "retriable", "field")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRIABLE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    retriable: bool
    field: str
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ..., retriable: _Optional[bool] = ..., field: _Optional[str] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("stream", "payload_json", "idempotency_key", "correlation_id", "source")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    stream: str
    payload_json: str
    idempotency_key: str
    correlation_id: str
    source: str
    def __init__(self, stream: _Optional[str] = ..., payload_json: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., correlation_id: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("stream", "kind", "id", "duplicate", "receivers")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    kind: str
    id: str
    duplicate: bool
    receivers: int
    def __init__(self, stream: _Optional[str] = ..., kind: _Optional[str] = ..., id: _Optional[str] = ..., duplicate: _Optional[bool] = ..., receivers: _Optional[int] = ...) -> None: ...

class PublishBatchRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[PublishRequest]
    def __init__(self, events: _Optional[_Iterable[_Union[PublishRequest, _Mapping]]] = ...) -> None: ...

class PublishBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PublishResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[PublishResponse, _Mapping]]] = ...) -> None: ...

class PublishStreamRequest(_message.Message):
    __slots__ = ("ref", "event")
    REF_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ref: int
    event: PublishRequest
    def __init__(self, ref: _Optional[int] = ..., event: _Optional[_Union[PublishRequest, _Mapping]] = ...) -> None: ...

class PublishStreamResponse(_message.Message):
    __slots__ = ("ref", "result", "error")
    REF_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ref: int
    result: PublishResponse
    error: Error
    def __init__(self, ref: _Optional[int] = ..., result: _Optional[_Union[PublishResponse, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class PublishInfoRequest(_message.Message):
    __slots__ = ("channel", "payload_json", "correlation_id", "source")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    payload_json: str
    correlation_id: str
    source: str
    def __init__(self, channel: _Optional[str] = ..., payload_json: _Optional[str] = ..., correlation_id: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("stream", "group", "consumer", "id", "delivery_count", "payload_json", "metadata")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    id: str
    delivery_count: int
    payload_json: str
    metadata: EventMetadata
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., id: _Optional[str] = ..., delivery_count: _Optional[int] = ..., payload_json: _Optional[str] = ..., metadata: _Optional[_Union[EventMetadata, _Mapping]] = ...) -> None: ...

class SubscribeStart(_message.Message):
    __slots__ = ("stream", "group", "consumer", "max_in_flight")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    max_in_flight: int
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class SubscribeAck(_message.Message):
    __slots__ = ("ref", "ids")
    REF_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    ref: int
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ref: _Optional[int] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubscribeNack(_message.Message):
    __slots__ = ("ref", "id", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: int
    id: str
    reason: str
    def __init__(self, ref: _Optional[int] = ..., id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SubscribeExtend(_message.Message):
    __slots__ = ("ref", "ids")
    REF_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    ref: int
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ref: _Optional[int] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubscribeRelease(_message.Message):
    __slots__ = ("ref", "ids", "delivery_counts")
    REF_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNTS_FIELD_NUMBER: _ClassVar[int]
    ref: int
    ids: _containers.RepeatedScalarFieldContainer[str]
    delivery_counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ref: _Optional[int] = ..., ids: _Optional[_Iterable[str]] = ..., delivery_counts: _Optional[_Iterable[int]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("start", "ack", "nack", "extend", "release")
    START_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    EXTEND_FIELD_NUMBER: _ClassVar[int]
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    start: SubscribeStart
    ack: SubscribeAck
    nack: SubscribeNack
    extend: SubscribeExtend
    release: SubscribeRelease
    def __init__(self, start: _Optional[_Union[SubscribeStart, _Mapping]] = ..., ack: _Optional[_Union[SubscribeAck, _Mapping]] = ..., nack: _Optional[_Union[SubscribeNack, _Mapping]] = ..., extend: _Optional[_Union[SubscribeExtend, _Mapping]] = ..., release: _Optional[_Union[SubscribeRelease, _Mapping]] = ...) -> None: ...

class Subscribed(_message.Message):
    __slots__ = ("stream", "group", "consumer", "max_in_flight")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    max_in_flight: int
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class SubscribeAckResult(_message.Message):
    __slots__ = ("ref", "error")
    REF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ref: int
    error: Error
    def __init__(self, ref: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class SubscribeNackResult(_message.Message):
    __slots__ = ("ref", "result", "error")
    REF_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ref: int
    result: NackResponse
    error: Error
    def __init__(self, ref: _Optional[int] = ..., result: _Optional[_Union[NackResponse, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class DeliveryBatch(_message.Message):
    __slots__ = ("deliveries",)
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ...) -> None: ...

class SubscribeExtendResult(_message.Message):
    __slots__ = ("ref", "extended", "error")
    REF_FIELD_NUMBER: _ClassVar[int]
    EXTENDED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ref: int
    extended: int
    error: Error
    def __init__(self, ref: _Optional[int] = ..., extended: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class SubscribeReleaseResult(_message.Message):
    __slots__ = ("ref", "released", "error")
    REF_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ref: int
    released: int
    error: Error
    def __init__(self, ref: _Optional[int] = ..., released: _Optional[int] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("subscribed", "deliveries", "ack_result", "nack_result", "extend_result", "release_result")
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    ACK_RESULT_FIELD_NUMBER: _ClassVar[int]
    NACK_RESULT_FIELD_NUMBER: _ClassVar[int]
    EXTEND_RESULT_FIELD_NUMBER: _ClassVar[int]
    RELEASE_RESULT_FIELD_NUMBER: _ClassVar[int]
    subscribed: Subscribed
    deliveries: DeliveryBatch
    ack_result: SubscribeAckResult
    nack_result: SubscribeNackResult
    extend_result: SubscribeExtendResult
    release_result: SubscribeReleaseResult
    def __init__(self, subscribed: _Optional[_Union[Subscribed, _Mapping]] = ..., deliveries: _Optional[_Union[DeliveryBatch, _Mapping]] = ..., ack_result: _Optional[_Union[SubscribeAckResult, _Mapping]] = ..., nack_result: _Optional[_Union[SubscribeNackResult, _Mapping]] = ..., extend_result: _Optional[_Union[SubscribeExtendResult, _Mapping]] = ..., release_result: _Optional[_Union[SubscribeReleaseResult, _Mapping]] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("stream", "group", "ids")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("acked",)
    ACKED_FIELD_NUMBER: _ClassVar[int]
    acked: int
    def __init__(self, acked: _Optional[int] = ...) -> None: ...

class ExtendRequest(_message.Message):
    __slots__ = ("stream", "group", "consumer", "ids")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExtendResponse(_message.Message):
    __slots__ = ("extended",)
    EXTENDED_FIELD_NUMBER: _ClassVar[int]
    extended: int
    def __init__(self, extended: _Optional[int] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("stream", "group", "consumer", "ids", "delivery_counts")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNTS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumer: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    delivery_counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumer: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., delivery_counts: _Optional[_Iterable[int]] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: int
    def __init__(self, released: _Optional[int] = ...) -> None: ...

class NackRequest(_message.Message):
    __slots__ = ("stream", "group", "id", "reason")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    id: str
    reason: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class NackResponse(_message.Message):
    __slots__ = ("id", "outcome", "retry_at_ms", "dead_letter_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RETRY_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    outcome: str
    retry_at_ms: int
    dead_letter_id: str
    def __init__(self, id: _Optional[str] = ..., outcome: _Optional[str] = ..., retry_at_ms: _Optional[int] = ..., dead_letter_id: _Optional[str] = ...) -> None: ...

class SubscribeChannelRequest(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, channels: _Optional[_Iterable[str]] = ...) -> None: ...

class ChannelMessage(_message.Message):
    __slots__ = ("channel", "payload_json", "metadata")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    channel: str
    payload_json: str
    metadata: EventMetadata
    def __init__(self, channel: _Optional[str] = ..., payload_json: _Optional[str] = ..., metadata: _Optional[_Union[EventMetadata, _Mapping]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ("streams",)
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, streams: _Optional[_Iterable[str]] = ...) -> None: ...

class ConsumerStatus(_message.Message):
    __slots__ = ("name", "pending", "idle_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    IDLE_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    pending: int
    idle_ms: int
    def __init__(self, name: _Optional[str] = ..., pending: _Optional[int] = ..., idle_ms: _Optional[int] = ...) -> None: ...

class GroupStatus(_message.Message):
    __slots__ = ("name", "consumers", "pending", "lag", "last_delivered_id", "retry_scheduled")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    LAST_DELIVERED_ID_FIELD_NUMBER: _ClassVar[int]
    RETRY_SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    name: str
    consumers: _containers.RepeatedCompositeFieldContainer[ConsumerStatus]
    pending: int
    lag: int
    last_delivered_id: str
    retry_scheduled: int
    def __init__(self, name: _Optional[str] = ..., consumers: _Optional[_Iterable[_Union[ConsumerStatus, _Mapping]]] = ..., pending: _Optional[int] = ..., lag: _Optional[int] = ..., last_delivered_id: _Optional[str] = ..., retry_scheduled: _Optional[int] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("stream", "group", "metric", "value", "threshold", "message")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    metric: str
    value: int
    threshold: int
    message: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., metric: _Optional[str] = ..., value: _Optional[int] = ..., threshold: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class StreamStatus(_message.Message):
    __slots__ = ("name", "exists", "length", "first_entry_id", "last_entry_id", "dead_letter_length", "oldest_pending_age_ms", "groups", "alerts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    FIRST_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_LENGTH_FIELD_NUMBER: _ClassVar[int]
    OLDEST_PENDING_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    exists: bool
    length: int
    first_entry_id: str
    last_entry_id: str
    dead_letter_length: int
    oldest_pending_age_ms: int
    groups: _containers.RepeatedCompositeFieldContainer[GroupStatus]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    def __init__(self, name: _Optional[str] = ..., exists: _Optional[bool] = ..., length: _Optional[int] = ..., first_entry_id: _Optional[str] = ..., last_entry_id: _Optional[str] = ..., dead_letter_length: _Optional[int] = ..., oldest_pending_age_ms: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[GroupStatus, _Mapping]]] = ..., alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("redis_version", "streams", "channels", "alerts", "generated_at_ms")
    REDIS_VERSION_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    redis_version: str
    streams: _containers.RepeatedCompositeFieldContainer[StreamStatus]
    channels: _containers.RepeatedScalarFieldContainer[str]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    generated_at_ms: int
    def __init__(self, redis_version: _Optional[str] = ..., streams: _Optional[_Iterable[_Union[StreamStatus, _Mapping]]] = ..., channels: _Optional[_Iterable[str]] = ..., alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., generated_at_ms: _Optional[int] = ...) -> None: ...

class CreateGroupRequest(_message.Message):
    __slots__ = ("stream", "group", "start")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    start: str
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., start: _Optional[str] = ...) -> None: ...

class CreateGroupResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: bool
    def __init__(self, created: _Optional[bool] = ...) -> None: ...

class RewindRequest(_message.Message):
    __slots__ = ("stream", "group", "to_id", "to_time_ms")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TO_ID_FIELD_NUMBER: _ClassVar[int]
    TO_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    to_id: str
    to_time_ms: int
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., to_id: _Optional[str] = ..., to_time_ms: _Optional[int] = ...) -> None: ...

class RewindResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DestroyGroupRequest(_message.Message):
    __slots__ = ("stream", "group", "force")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    force: bool
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DestroyGroupResponse(_message.Message):
    __slots__ = ("destroyed", "pending")
    DESTROYED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    destroyed: bool
    pending: int
    def __init__(self, destroyed: _Optional[bool] = ..., pending: _Optional[int] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("stream", "count", "after")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    stream: str
    count: int
    after: str
    def __init__(self, stream: _Optional[str] = ..., count: _Optional[int] = ..., after: _Optional[str] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("dlq_id", "stream", "original_id", "group", "reason", "delivery_count", "dead_lettered_at_ms", "payload_json", "metadata")
    DLQ_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    dlq_id: str
    stream: str
    original_id: str
    group: str
    reason: str
    delivery_count: int
    dead_lettered_at_ms: int
    payload_json: str
    metadata: EventMetadata
    def __init__(self, dlq_id: _Optional[str] = ..., stream: _Optional[str] = ..., original_id: _Optional[str] = ..., group: _Optional[str] = ..., reason: _Optional[str] = ..., delivery_count: _Optional[int] = ..., dead_lettered_at_ms: _Optional[int] = ..., payload_json: _Optional[str] = ..., metadata: _Optional[_Union[EventMetadata, _Mapping]] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    def __init__(self, entries: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ...) -> None: ...

class ReplayDeadLettersRequest(_message.Message):
    __slots__ = ("stream", "ids", "all")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    stream: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    def __init__(self, stream: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ...) -> None: ...

class Replayed(_message.Message):
    __slots__ = ("dlq_id", "new_id")
    DLQ_ID_FIELD_NUMBER: _ClassVar[int]
    NEW_ID_FIELD_NUMBER: _ClassVar[int]
    dlq_id: str
    new_id: str
    def __init__(self, dlq_id: _Optional[str] = ..., new_id: _Optional[str] = ...) -> None: ...

class ReplayDeadLettersResponse(_message.Message):
    __slots__ = ("replayed",)
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    replayed: _containers.RepeatedCompositeFieldContainer[Replayed]
    def __init__(self, replayed: _Optional[_Iterable[_Union[Replayed, _Mapping]]] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("name", "groups", "retention")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    retention: int
    def __init__(self, name: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ..., retention: _Optional[int] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams",)
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[StreamInfo]
    def __init__(self, streams: _Optional[_Iterable[_Union[StreamInfo, _Mapping]]] = ...) -> None: ...

class ListChannelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListChannelsResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, channels: _Optional[_Iterable[str]] = ...) -> None: ...

class ListGroupsRequest(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class GroupRef(_message.Message):
    __slots__ = ("stream", "name")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    stream: str
    name: str
    def __init__(self, stream: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListGroupsResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[GroupRef]
    def __init__(self, groups: _Optional[_Iterable[_Union[GroupRef, _Mapping]]] = ...) -> None: ...
