"""Typed async client of the Friday sidecar over gRPC, for agents.

    async with FridayClient("127.0.0.1:50051", api_key="...") as bus:
        await bus.publish("email.received", {"email_id": "abc", "size": 3})
        async for d in bus.subscribe("email.received", "email-processor", "agent-1", max_in_flight=10):
            handle(d.payload)
            await d.ack()            # or: await d.nack("why it failed")

Resilience: unary calls retry UNAVAILABLE (sidecar restarting, Redis briefly away) a bounded
number of times with exponential backoff and jitter; other errors are raised at once as the
error classes the sidecar's core raises (:mod:`.errors`) or :class:`Unauthenticated` /
:class:`PermissionDenied`. A publish without ``idempotency_key`` gets one the client generates
(``uuid4().hex``, ``auto_idempotency_key=True``, the default), so that retrying an UNAVAILABLE
publish (Redis unreachable, or FRIDAY_MIN_REPLICAS_ACK not confirmed in time: "the entry may
or may not exist") writes the event at most once. Its cost, measured through the core on one
connection: ~90 us more per event (PUBLISH script + SET instead of a plain XADD; ~250 -> ~340 us)
and ~150 bytes of Redis memory per key (MEMORY USAGE; ~260 bytes of used_memory) kept for
FRIDAY_IDEMPOTENCY_WINDOW_S (24 h by default). ``auto_idempotency_key=False`` turns it off:
a retried publish without a key may then be written twice (at-least-once). Subscriptions reconnect for as
long as they are iterated and resume delivering; deliveries received before a reconnect
can still be acked (by a unary Ack when their call has ended).

What counts as a delivery: deliveries the sidecar sent ahead that were never handed to the
application (still buffered when the subscription closes, or when its call broke) are
released - redelivered at once with their delivery count as it was, so they never count
toward max_deliveries. A delivery the application received and did not settle stays
pending and is reclaimed after claim_idle_ms with its count raised, as for a crash.

The pieces: :mod:`.convert` (messages <-> values), :mod:`.subscription` (the Subscribe
stream, deliveries, ack batching), :mod:`.publish_stream` (the PublishStream call),
:mod:`.errors` (typed errors), :mod:`.models` (result values) and :mod:`.limits` (wire limits), which
the sidecar imports too, and :mod:`._status` (the status-code table it shares with the sidecar and
reading failures back); this module is the facade.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Self

import grpc

from . import convert
from ._proto import eventbus_pb2 as pb
from ._proto import eventbus_pb2_grpc as pb_grpc
from ._status import RETRY_CODES, from_error_message, from_rpc_error
from .convert import Event
from .errors import FridayError, Unavailable
from .models import BusStatus, ChannelMessage, DeadLetter, NackResult, PublishResult, ReplayResult, StreamInfo
from .publish_stream import PublishStream, StreamBroken
from .subscription import Subscription
from .tracing import trace_metadata

__all__ = ["DEFAULT_TARGET", "Event", "FridayClient", "StreamInfo", "Subscription"]

DEFAULT_TARGET = "127.0.0.1:50051"

_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    # Find a restarted sidecar quickly (gRPC's default backoff grows to 2 minutes).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


class FridayClient:
    """Async client of the Friday sidecar's gRPC door.

    ``target`` is ``host:port``. ``api_key`` is sent as ``authorization: Bearer <key>``.
    ``tls``: False (plaintext), True (TLS with the system roots, or ``root_certificates``)
    or ready-made :class:`grpc.ChannelCredentials`. ``retries`` bounds the retries of a
    unary call on UNAVAILABLE; ``reconnect`` lets subscriptions reconnect indefinitely.

    Every call raises the core's error classes: InvalidArgument (the input is wrong: fix it,
    never retried), NotFound (unknown stream, group, channel or entry), Conflict (the state
    forbids it), BacklogFull (retry later), Unavailable (still unreachable after ``retries``),
    plus Unauthenticated / PermissionDenied (fix the API key). Each keeps the status code as
    ``.grpc_code``.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        api_key: str | None = None,
        *,
        tls: bool | grpc.ChannelCredentials = False,
        root_certificates: bytes | None = None,
        retries: int = 8,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        reconnect: bool = True,
        timeout_s: float | None = 30.0,
        streaming_publish: bool = True,
        auto_idempotency_key: bool = True,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        opts = list(_CHANNEL_OPTIONS) + list(options)
        if tls is False:
            self._channel = grpc.aio.insecure_channel(target, options=opts)
        else:
            creds = tls if isinstance(tls, grpc.ChannelCredentials) else grpc.ssl_channel_credentials(root_certificates)
            self._channel = grpc.aio.secure_channel(target, creds, options=opts)
        self._stub = pb_grpc.EventBusStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self.target = target
        self.retries = retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.reconnect = reconnect
        self.timeout_s = timeout_s
        self.streaming_publish = streaming_publish
        self.auto_idempotency_key = auto_idempotency_key
        self._subscriptions: set[Subscription] = set()
        self._publisher: PublishStream | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every subscription (deliveries still buffered, never handed to the application,
        are released; those handed out and not settled stay pending), the publish stream and
        the channel."""
        for sub in list(self._subscriptions):
            await sub.close()
        if self._publisher is not None:
            await self._publisher.close()
        await self._channel.close()

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max_s, self.backoff_initial_s * (2 ** min(attempt, 20)))
        return base * random.uniform(0.5, 1.0)

    async def _call(self, method: str, request: Any, trace: tuple[tuple[str, str], ...] = ()) -> Any:
        rpc = getattr(self._stub, method)
        metadata = self._metadata + trace if trace else self._metadata
        attempt = 0
        while True:
            try:
                return await rpc(request, metadata=metadata, timeout=self.timeout_s)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in RETRY_CODES and attempt < self.retries:
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                raise from_rpc_error(exc) from None

    # -- publish
    async def publish(
        self,
        stream: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        source: str | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> PublishResult:
        """Publish one event to a critical stream or an informational channel.

        Goes over one long-lived PublishStream call (``streaming_publish=False``: a unary
        Publish per event); events published one after another are written in that order.
        UNAVAILABLE is retried (``retries`` times, with backoff); a retry without
        ``idempotency_key`` may write the event twice. Raises TypeError / ValueError for a
        payload that is not a JSON object, and the sidecar's errors (NotFound for an unknown
        stream, BacklogFull, InvalidArgument...).

        Without ``idempotency_key`` the client generates one (``auto_idempotency_key``), the same
        for every retry of this call: a retry after "may or may not exist" writes nothing twice.

        ``traceparent`` / ``tracestate`` (W3C) are stored with the event and handed to its
        consumers; without them, the current OpenTelemetry span's context is sent when
        ``opentelemetry`` is importable and a span is active (:func:`trace_metadata`). An event
        with a trace context goes over a unary Publish (call metadata is per call)."""
        if idempotency_key is None and self.auto_idempotency_key:
            idempotency_key = uuid.uuid4().hex
        msg = convert.publish_message(stream, payload, idempotency_key, correlation_id, source)
        trace = trace_metadata(traceparent, tracestate)
        if trace or not self.streaming_publish:
            return convert.publish_result(await self._call("Publish", msg, trace))
        if self._publisher is None:
            self._publisher = PublishStream(self)
        attempt = 0
        while True:
            try:
                resp = await self._publisher.send(msg)
            except StreamBroken as exc:
                if not exc.retriable:
                    assert exc.rpc_error is not None
                    raise from_rpc_error(exc.rpc_error) from None
                error: FridayError = Unavailable(f"the sidecar is unreachable: {exc}; retry later")
            else:
                if not resp.HasField("error"):
                    return convert.publish_result(resp.result)
                error = from_error_message(resp.error.kind, resp.error.message, resp.error.field)
                if not isinstance(error, Unavailable):
                    raise error
            if attempt >= self.retries:
                raise error
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    async def publish_batch(self, events: Iterable[Event | Mapping[str, Any]], *, traceparent: str | None = None,
                            tracestate: str | None = None) -> list[PublishResult]:
        """Publish 1 to MAX_BATCH (1000) events, atomically validated (any invalid: nothing written); results in order.
        Each event is an :class:`Event` or a mapping with the keys of :meth:`publish`.
        Raises InvalidArgument when any is invalid (the message names it: ``events[i]``).
        ``traceparent`` / ``tracestate`` (or the current OpenTelemetry context) apply to every event."""
        msgs = [convert.event_message(e) for e in events]
        if self.auto_idempotency_key:
            for m in msgs:  # one key per event, kept by every retry of the call
                if not m.HasField("idempotency_key"):
                    m.idempotency_key = uuid.uuid4().hex
        r = await self._call("PublishBatch", pb.PublishBatchRequest(events=msgs), trace_metadata(traceparent, tracestate))
        return [convert.publish_result(x) for x in r.results]

    async def publish_info(self, channel: str, payload: Mapping[str, Any], *, correlation_id: str | None = None,
                           source: str | None = None, traceparent: str | None = None,
                           tracestate: str | None = None) -> PublishResult:
        """Publish to an informational channel (at-most-once: only current subscribers get it).
        Raises NotFound when ``channel`` is not a channel of the topology (e.g. a critical stream)."""
        m = pb.PublishInfoRequest(channel=channel, payload_json=convert.dumps(payload))
        if correlation_id is not None:
            m.correlation_id = correlation_id
        if source is not None:
            m.source = source
        return convert.publish_result(await self._call("PublishInfo", m, trace_metadata(traceparent, tracestate)))

    # -- consume
    def subscribe(self, stream: str, group: str, consumer: str, *, max_in_flight: int | None = None) -> Subscription:
        """Deliveries for ``consumer`` of ``group``; at most ``max_in_flight`` un-acked at once
        (None: not sent, the sidecar's default, DEFAULT_MAX_IN_FLIGHT; 0 is InvalidArgument).
        Nothing is sent until it is iterated (or entered, or :meth:`Subscription.wait_subscribed`);
        the sidecar's refusal (NotFound for an unknown group...) is raised by the iteration."""
        return Subscription(self, stream, group, consumer, max_in_flight)

    async def ack(self, stream: str, group: str, ids: Sequence[str]) -> int:
        """Acknowledge entries by id (outside a subscription). Returns how many were pending
        (an id not pending counts 0, no error). At most MAX_ACK_IDS ids; raises InvalidArgument
        for a malformed id, NotFound for an unknown stream or group."""
        return int((await self._call("Ack", pb.AckRequest(stream=stream, group=group, ids=list(ids)))).acked)

    async def extend(self, stream: str, group: str, consumer: str, ids: Sequence[str]) -> int:
        """Restart the claim idle time of entries still pending for ``consumer``; returns how many
        (0 for ids acked or reclaimed by another consumer meanwhile)."""
        m = pb.ExtendRequest(stream=stream, group=group, consumer=consumer, ids=list(ids))
        return int((await self._call("Extend", m)).extended)

    async def release(self, stream: str, group: str, consumer: str, deliveries: Iterable[Any]) -> int:
        """Give back deliveries ``consumer`` never handed to its code, outside a subscription: each
        still pending for ``consumer`` with the delivery count it was received with is redelivered
        at once with that same count (it does not count toward max_deliveries). ``deliveries``:
        :class:`~friday_bus_client.subscription.Delivery` objects or ``(entry_id, delivery_count)``
        pairs, 1 to MAX_ACK_IDS. Returns how many were released (entries acked, reclaimed by
        another consumer, delivered again since or nacked are skipped: 0, not an error).
        Raises InvalidArgument (bad id or count), NotFound (unknown stream or group)."""
        pairs = [(d.entry_id, d.delivery_count) if hasattr(d, "delivery_count") else tuple(d) for d in deliveries]
        m = pb.ReleaseRequest(stream=stream, group=group, consumer=consumer,
                              ids=[i for i, _ in pairs], delivery_counts=[c for _, c in pairs])
        return int((await self._call("Release", m)).released)

    async def nack(self, stream: str, group: str, entry_id: str, reason: str) -> NackResult:
        """Reject a delivery outside a subscription: redelivered after the stream's backoff, or
        dead-lettered once delivered max_deliveries times. Raises NotFound if it is not pending."""
        r = await self._call("Nack", pb.NackRequest(stream=stream, group=group, id=entry_id, reason=reason))
        return convert.nack_result(r)

    async def subscribe_channel(self, *channels: str) -> AsyncIterator[ChannelMessage]:
        """Messages published on informational channels from now on; reconnects on UNAVAILABLE
        (messages published while disconnected are not received: channels are at-most-once).
        Raises NotFound for a name that is not a channel of the topology."""
        attempt = 0
        while True:
            call = self._stub.SubscribeChannel(pb.SubscribeChannelRequest(channels=list(channels)), metadata=self._metadata)
            try:
                async for m in call:
                    attempt = 0
                    yield convert.channel_message(m)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRY_CODES or not self.reconnect:
                    raise from_rpc_error(exc) from None
            finally:
                call.cancel()
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    # -- admin
    async def status(self, streams: Sequence[str] = ()) -> BusStatus:
        """Snapshot of every stream (or the named ones): lengths, groups, consumers, alerts."""
        return convert.bus_status(await self._call("Status", pb.StatusRequest(streams=list(streams))))

    async def create_group(self, stream: str, group: str, start: str = "new") -> bool:
        """Create a group at ``new``, ``all`` or after an entry id. False if it already existed."""
        return bool((await self._call("CreateGroup", pb.CreateGroupRequest(stream=stream, group=group, start=start))).created)

    async def rewind(self, stream: str, group: str, *, to_id: str | None = None, to_time_ms: int | None = None) -> str:
        """Move the group's position to ``to_id`` or ``to_time_ms`` (give one): entries after it
        are delivered again. Returns the group's new last-delivered id."""
        m = pb.RewindRequest(stream=stream, group=group)
        if to_id is not None:
            m.to_id = to_id
        if to_time_ms is not None:
            m.to_time_ms = to_time_ms
        return str((await self._call("Rewind", m)).id)

    async def destroy_group(self, stream: str, group: str, *, force: bool = False) -> int:
        """Destroy a group; returns the pending entries it held. Raises Conflict while it holds
        pending entries, unless ``force``."""
        return int((await self._call("DestroyGroup", pb.DestroyGroupRequest(stream=stream, group=group, force=force))).pending)

    async def list_dead_letters(self, stream: str, *, count: int | None = None, after: str | None = None) -> list[DeadLetter]:
        """Dead letters of ``stream``, oldest first: at most ``count`` (None: not sent, the sidecar's
        default, DEFAULT_DLQ_LIST_COUNT; 0 is InvalidArgument), after the id ``after`` (exclusive)."""
        m = pb.ListDeadLettersRequest(stream=stream)
        if count is not None:
            m.count = count
        if after is not None:
            m.after = after
        return [convert.dead_letter(d) for d in (await self._call("ListDeadLetters", m)).entries]

    async def replay_dead_letters(self, stream: str, ids: Sequence[str] | None = None) -> list[ReplayResult]:
        """Publish the given dead letters again into their stream (and remove them from the
        dead letters), or every one when ``ids`` is None. An empty ``ids`` is InvalidArgument."""
        m = pb.ReplayDeadLettersRequest(stream=stream, ids=list(ids or ()), all=ids is None)
        return [convert.replay_result(x) for x in (await self._call("ReplayDeadLetters", m)).replayed]

    async def list_streams(self) -> list[StreamInfo]:
        """The critical streams of the topology with their groups and retention."""
        return [convert.stream_info(s) for s in (await self._call("ListStreams", pb.ListStreamsRequest())).streams]

    async def list_channels(self) -> list[str]:
        """The informational channels of the topology."""
        return list((await self._call("ListChannels", pb.ListChannelsRequest())).channels)

    async def list_groups(self, stream: str | None = None) -> list[tuple[str, str]]:
        """(stream, group) pairs: the topology's plus those created at run time."""
        m = pb.ListGroupsRequest()
        if stream is not None:
            m.stream = stream
        return [(g.stream, g.name) for g in (await self._call("ListGroups", m)).groups]
