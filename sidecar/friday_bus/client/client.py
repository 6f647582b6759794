"""Typed async client of the Friday sidecar over gRPC, for agents.

    async with FridayClient("127.0.0.1:50051", api_key="...") as bus:
        await bus.publish("email.received", {"email_id": "abc", "size": 3})
        async for d in bus.subscribe("email.received", "email-processor", "agent-1", max_in_flight=10):
            handle(d.payload)
            await d.ack()            # or: await d.nack("why it failed")

Resilience: unary calls retry UNAVAILABLE (sidecar restarting, Redis briefly away) a bounded
number of times with exponential backoff and jitter; other errors are raised at once as the
core's error classes (:mod:`friday_bus.core.errors`) or :class:`Unauthenticated` /
:class:`PermissionDenied`. A retried publish without ``idempotency_key`` may be written
twice (at-least-once); give a key to make retries exact. Subscriptions reconnect for as
long as they are iterated and resume delivering; deliveries received before a reconnect
can still be acked (by a unary Ack when their call has ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import grpc

from .._proto import eventbus_pb2 as pb
from .._proto import eventbus_pb2_grpc as pb_grpc
from ..core.errors import FridayError, Unavailable
from ..core.limits import DEFAULT_DLQ_LIST_COUNT, DEFAULT_MAX_IN_FLIGHT, MAX_ACK_IDS
from ..core.models import (
    Alert,
    BusStatus,
    ChannelMessage,
    ConsumerStatus,
    DeadLetter,
    EventMeta,
    GroupStatus,
    NackResult,
    PublishResult,
    ReplayResult,
    StreamStatus,
)
from .errors import from_error_message, from_rpc_error

JSONObject = dict[str, Any]

DEFAULT_TARGET = "127.0.0.1:50051"
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})

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


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Event:
    """One event of :meth:`FridayClient.publish_batch`."""

    stream: str
    payload: JSONObject
    idempotency_key: str | None = None
    correlation_id: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    groups: list[str]
    retention: int


def _meta(m: pb.EventMetadata) -> EventMeta:
    return EventMeta(
        event_id=m.event_id if m.HasField("event_id") else None,
        source=m.source if m.HasField("source") else None,
        correlation_id=m.correlation_id if m.HasField("correlation_id") else None,
        published_at_ms=m.published_at_ms if m.HasField("published_at_ms") else None,
        encoding="legacy" if m.encoding == "legacy" else "friday",
    )


def _publish_result(r: pb.PublishResponse) -> PublishResult:
    return PublishResult(
        target=r.stream,
        kind="channel" if r.kind == "channel" else "stream",
        entry_id=r.id if r.HasField("id") else None,
        duplicate=r.duplicate,
        receivers=r.receivers if r.HasField("receivers") else None,
    )


def _nack_result(r: pb.NackResponse) -> NackResult:
    return NackResult(
        entry_id=r.id,
        outcome="dead_lettered" if r.outcome == "dead_lettered" else "retry",
        retry_at_ms=r.retry_at_ms if r.HasField("retry_at_ms") else None,
        dead_letter_id=r.dead_letter_id if r.HasField("dead_letter_id") else None,
    )


def _alert(a: pb.Alert) -> Alert:
    return Alert(a.stream, a.group if a.HasField("group") else None, a.metric, a.value, a.threshold, a.message)


def _stream_status(s: pb.StreamStatus) -> StreamStatus:
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
        alerts=[_alert(a) for a in s.alerts],
    )


def _publish_message(stream: str, payload: Mapping[str, Any], idempotency_key: str | None,
                     correlation_id: str | None, source: str | None) -> pb.PublishRequest:
    m = pb.PublishRequest(stream=stream, payload_json=_dumps(payload))
    if idempotency_key is not None:
        m.idempotency_key = idempotency_key
    if correlation_id is not None:
        m.correlation_id = correlation_id
    if source is not None:
        m.source = source
    return m


def _dumps(payload: Mapping[str, Any]) -> str:
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping (a JSON object), got {type(payload).__name__}")
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ---------------------------------------------------------------------------- deliveries


class Delivery:
    """One event delivered to this consumer. It stays pending in the sidecar until
    :meth:`ack` (done) or :meth:`nack` (failed: redelivered later, or dead-lettered)."""

    __slots__ = ("_session", "_settled", "_sub", "consumer", "delivery_count", "group", "id", "metadata", "payload", "stream")

    def __init__(self, sub: Subscription, session: _Session, m: pb.Delivery) -> None:
        self.stream = m.stream
        self.group = m.group
        self.consumer = m.consumer
        self.id = m.id
        self.delivery_count = m.delivery_count
        self.payload: JSONObject = json.loads(m.payload_json)
        self.metadata = _meta(m.metadata)
        self._sub = sub
        self._session = session

    @property
    def entry_id(self) -> str:
        return self.id

    def ack(self) -> asyncio.Future[None]:
        """Acknowledge: the event is done and will not be delivered again to this group.

        ``await delivery.ack()`` waits for the sidecar's confirmation (and raises its error).
        Without ``await`` the ack is still sent: acks made in the same loop turn travel
        together, which is the fast way to ack many deliveries."""
        return self._sub._ack(self)

    async def nack(self, reason: str) -> NackResult:
        """Reject with ``reason``: redelivered after the stream's backoff, or dead-lettered
        once delivered max_deliveries times."""
        return await self._sub._nack(self, reason)

    async def extend(self) -> bool:
        """Still working on it: restart its claim idle time so that no other consumer reclaims
        it (call well within the stream's claim_idle_ms). False if it is no longer pending
        for this consumer (acked, or already reclaimed)."""
        return await self._sub._extend(self)

    def __repr__(self) -> str:
        return f"Delivery({self.stream}/{self.group} {self.id} x{self.delivery_count} {self.payload!r})"


class _SessionLost(Exception):
    """The Subscribe call ended before the sidecar answered: use the unary RPC instead."""


class _Session:
    """One Subscribe call: writes (serialised), outstanding acks / nacks by ref."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.alive = True
        self._refs = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self._ack_buffer: list[tuple[str, asyncio.Future[None]]] = []
        self._flush_task: asyncio.Task[None] | None = None
        self._waiting: dict[int, list[asyncio.Future[Any]]] = {}

    async def _write(self, msg: pb.SubscribeRequest) -> None:
        async with self._write_lock:
            if not self.alive:
                raise _SessionLost()
            try:
                await self.call.write(msg)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                raise _SessionLost() from exc

    def ack(self, entry_id: str) -> asyncio.Future[None]:
        """Queue an ack; acks queued in the same loop turn go out as one message."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ack_buffer.append((entry_id, fut))
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush())
        return fut

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the other acks of this loop turn join
        while self._ack_buffer:
            batch, self._ack_buffer = self._ack_buffer[:MAX_ACK_IDS], self._ack_buffer[MAX_ACK_IDS:]
            ref = next(self._refs)
            self._waiting[ref] = [f for _, f in batch]
            try:
                await self._write(pb.SubscribeRequest(ack=pb.SubscribeAck(ref=ref, ids=[i for i, _ in batch])))
            except _SessionLost:
                self._fail(ref)

    async def extend(self, entry_id: str) -> Any:
        ref = next(self._refs)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = [fut]
        try:
            await self._write(pb.SubscribeRequest(extend=pb.SubscribeExtend(ref=ref, ids=[entry_id])))
        except _SessionLost:
            self._fail(ref)
        return await fut

    async def nack(self, entry_id: str, reason: str) -> Any:
        ref = next(self._refs)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = [fut]
        try:
            await self._write(pb.SubscribeRequest(nack=pb.SubscribeNack(ref=ref, id=entry_id, reason=reason)))
        except _SessionLost:
            self._fail(ref)
        return await fut

    def _fail(self, ref: int) -> None:
        for f in self._waiting.pop(ref, []):
            if not f.done():
                f.set_exception(_SessionLost())

    def resolve(self, ref: int, error: pb.Error | None, value: Any) -> None:
        for f in self._waiting.pop(ref, []):
            if f.done():
                continue
            if error is not None:
                f.set_exception(from_error_message(error.kind, error.message, error.field))
            else:
                f.set_result(value)

    def end(self) -> None:
        self.alive = False
        for ref in list(self._waiting):
            self._fail(ref)
        for _, f in self._ack_buffer:
            if not f.done():
                f.set_exception(_SessionLost())
        self._ack_buffer = []
        with contextlib.suppress(Exception):
            self.call.cancel()


_CLOSED = object()


class Subscription:
    """Deliveries of one consumer of a group, with reconnection. Iterate it with ``async for``.
    Leaving the loop does not end the call: use ``async with client.subscribe(...) as sub``,
    or :meth:`close` (``FridayClient.close`` closes every subscription)."""

    def __init__(self, client: FridayClient, stream: str, group: str, consumer: str, max_in_flight: int) -> None:
        self._client = client
        self.stream, self.group, self.consumer = stream, group, consumer
        self.max_in_flight = max_in_flight
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._session: _Session | None = None
        self._subscribed = asyncio.Event()
        self._fallbacks: set[asyncio.Task[None]] = set()
        self.reconnects = 0

    # -- lifecycle
    def _ensure_started(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name=f"friday-subscribe-{self.stream}-{self.consumer}")
            self._client._subscriptions.add(self)

    async def wait_subscribed(self) -> None:
        """Wait until the sidecar confirmed the (re)subscription. Raises its error if it refused."""
        self._ensure_started()
        waiter = asyncio.ensure_future(self._subscribed.wait())
        assert self._task is not None
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if isinstance(item, BaseException):
                    raise item
            raise FridayError("the subscription ended before the sidecar confirmed it")

    async def close(self) -> None:
        """End the call. Deliveries not acked stay pending in the sidecar (reclaimed later)."""
        self._closed = True
        if self._session is not None:
            self._session.end()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self._queue.put_nowait(_CLOSED)
        self._client._subscriptions.discard(self)

    async def __aenter__(self) -> Self:
        self._ensure_started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delivery:
        """The next delivery. Cancelling the wait (e.g. ``asyncio.wait_for``) loses nothing."""
        self._ensure_started()
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # every later call ends too
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            await self.close()
            raise item
        return item  # type: ignore[no-any-return]

    # -- the call
    async def _run(self) -> None:
        client = self._client
        attempt = 0
        while not self._closed:
            call = client._stub.Subscribe(metadata=client._metadata)
            session = self._session = _Session(call)
            try:
                await call.write(pb.SubscribeRequest(start=pb.SubscribeStart(
                    stream=self.stream, group=self.group, consumer=self.consumer, max_in_flight=self.max_in_flight)))
                while True:
                    msg = await call.read()
                    if msg is grpc.aio.EOF:
                        break  # the sidecar ended the call without an error: subscribe again
                    kind = msg.WhichOneof("kind")
                    if kind == "deliveries":
                        for m in msg.deliveries.deliveries:
                            self._queue.put_nowait(Delivery(self, session, m))
                    elif kind == "ack_result":
                        r = msg.ack_result
                        session.resolve(r.ref, r.error if r.HasField("error") else None, None)
                    elif kind == "nack_result":
                        r = msg.nack_result
                        session.resolve(r.ref, r.error if r.HasField("error") else None,
                                        _nack_result(r.result) if r.HasField("result") else None)
                    elif kind == "extend_result":
                        r = msg.extend_result
                        session.resolve(r.ref, r.error if r.HasField("error") else None, r.extended)
                    elif kind == "subscribed":
                        attempt = 0
                        self._subscribed.set()
            except grpc.aio.AioRpcError as exc:
                if self._closed:
                    return
                if exc.code() not in RETRY_CODES or not client.reconnect:
                    self._queue.put_nowait(from_rpc_error(exc))
                    return
            except (grpc.aio.UsageError, asyncio.InvalidStateError):
                if self._closed:
                    return
            except Exception as exc:  # noqa: BLE001 - surfaced to the iterating code, not swallowed
                self._queue.put_nowait(exc)
                return
            finally:
                session.end()
                self._subscribed.clear()
            if self._closed:
                return
            self.reconnects += 1
            await asyncio.sleep(client._backoff(attempt))
            attempt += 1

    # -- settling deliveries
    def _ack(self, d: Delivery) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        out: asyncio.Future[None] = loop.create_future()

        async def by_unary() -> None:
            try:
                await self._client.ack(d.stream, d.group, [d.id])
            except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the ack
                if not out.done():
                    out.set_exception(exc)
            else:
                if not out.done():
                    out.set_result(None)

        def settled(f: asyncio.Future[None]) -> None:
            if out.done():
                return
            exc = None if f.cancelled() else f.exception()
            if f.cancelled() or isinstance(exc, _SessionLost):
                self._fallbacks.add(t := loop.create_task(by_unary()))  # the call ended: ack by a unary call
                t.add_done_callback(self._fallbacks.discard)
            elif exc is not None:
                out.set_exception(exc)
            else:
                out.set_result(None)

        s = d._session
        if s.alive:
            s.ack(d.id).add_done_callback(settled)
        else:
            self._fallbacks.add(t := loop.create_task(by_unary()))
            t.add_done_callback(self._fallbacks.discard)
        return out

    async def _extend(self, d: Delivery) -> bool:
        s = d._session
        if s.alive:
            try:
                return bool(await s.extend(d.id))
            except _SessionLost:
                pass
        return await self._client.extend(d.stream, d.group, d.consumer, [d.id]) > 0

    async def _nack(self, d: Delivery, reason: str) -> NackResult:
        s = d._session
        if s.alive:
            try:
                return await s.nack(d.id, reason)  # type: ignore[no-any-return]
            except _SessionLost:
                pass
        return await self._client.nack(d.stream, d.group, d.id, reason)


# ---------------------------------------------------------------------------- publish stream


class _StreamBroken(Exception):
    """The PublishStream call ended before answering; ``rpc_error`` says how (None: cleanly)."""

    def __init__(self, rpc_error: grpc.aio.AioRpcError | None = None) -> None:
        super().__init__(rpc_error.details() if rpc_error is not None else "the publish stream ended")
        self.rpc_error = rpc_error

    @property
    def retriable(self) -> bool:
        return self.rpc_error is None or self.rpc_error.code() in RETRY_CODES


class _PublishStream:
    """One long-lived PublishStream call shared by every publish of a client; reopened on demand."""

    def __init__(self, client: FridayClient) -> None:
        self.client = client
        self.call: Any = None
        self.refs = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[pb.PublishStreamResponse]] = {}
        self.lock = asyncio.Lock()
        self.reader: asyncio.Task[None] | None = None

    async def send(self, msg: pb.PublishRequest) -> pb.PublishStreamResponse:
        loop = asyncio.get_running_loop()
        async with self.lock:  # writes of one call must not overlap
            if self.call is None:
                self.call = self.client._stub.PublishStream(metadata=self.client._metadata)
                self.reader = loop.create_task(self._read(self.call), name="friday-publish-stream")
            call = self.call
            ref = next(self.refs)
            fut: asyncio.Future[pb.PublishStreamResponse] = loop.create_future()
            self.waiting[ref] = fut
            try:
                await call.write(pb.PublishStreamRequest(ref=ref, event=msg))
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                self.waiting.pop(ref, None)
                if self.call is call:
                    self.call = None
                raise _StreamBroken(exc if isinstance(exc, grpc.aio.AioRpcError) else None) from None
        if self.client.timeout_s is None:
            return await fut
        timer = loop.call_later(self.client.timeout_s, self._expire, ref)
        try:
            return await fut
        finally:
            timer.cancel()

    def _expire(self, ref: int) -> None:
        fut = self.waiting.pop(ref, None)
        if fut is not None and not fut.done():
            fut.set_exception(FridayError(f"the sidecar did not answer the publish within {self.client.timeout_s} s; "
                                          "it may or may not have been written"))

    async def _read(self, call: Any) -> None:
        broken = _StreamBroken()
        try:
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    break
                fut = self.waiting.pop(resp.ref, None)
                if fut is not None and not fut.done():
                    fut.set_result(resp)
        except grpc.aio.AioRpcError as exc:
            broken = _StreamBroken(exc)
        except asyncio.CancelledError:
            pass
        finally:
            if self.call is call:
                self.call = None
            waiting, self.waiting = self.waiting, {}
            for f in waiting.values():
                if not f.done():
                    f.set_exception(broken)

    async def close(self) -> None:
        call, self.call = self.call, None
        if call is not None:
            call.cancel()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


# ---------------------------------------------------------------------------- client


class FridayClient:
    """Async client of the Friday sidecar's gRPC door.

    ``target`` is ``host:port``. ``api_key`` is sent as ``authorization: Bearer <key>``.
    ``tls``: False (plaintext), True (TLS with the system roots, or ``root_certificates``)
    or ready-made :class:`grpc.ChannelCredentials`. ``retries`` bounds the retries of a
    unary call on UNAVAILABLE; ``reconnect`` lets subscriptions reconnect indefinitely.
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
        self._subscriptions: set[Subscription] = set()
        self._publisher: _PublishStream | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            await sub.close()
        if self._publisher is not None:
            await self._publisher.close()
        await self._channel.close()

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max_s, self.backoff_initial_s * (2 ** min(attempt, 20)))
        return base * random.uniform(0.5, 1.0)

    async def _call(self, method: str, request: Any) -> Any:
        rpc = getattr(self._stub, method)
        attempt = 0
        while True:
            try:
                return await rpc(request, metadata=self._metadata, timeout=self.timeout_s)
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
    ) -> PublishResult:
        """Publish one event to a critical stream or an informational channel.

        Goes over one long-lived PublishStream call (``streaming_publish=False``: a unary
        Publish per event); events published one after another are written in that order."""
        msg = _publish_message(stream, payload, idempotency_key, correlation_id, source)
        if not self.streaming_publish:
            return _publish_result(await self._call("Publish", msg))
        if self._publisher is None:
            self._publisher = _PublishStream(self)
        attempt = 0
        while True:
            try:
                resp = await self._publisher.send(msg)
            except _StreamBroken as exc:
                if not exc.retriable:
                    assert exc.rpc_error is not None
                    raise from_rpc_error(exc.rpc_error) from None
                error: FridayError = Unavailable(f"the sidecar is unreachable: {exc}; retry later")
            else:
                if not resp.HasField("error"):
                    return _publish_result(resp.result)
                error = from_error_message(resp.error.kind, resp.error.message, resp.error.field)
                if not isinstance(error, Unavailable):
                    raise error
            if attempt >= self.retries:
                raise error
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    async def publish_batch(self, events: Iterable[Event | Mapping[str, Any]]) -> list[PublishResult]:
        """Publish 1 to MAX_BATCH (1000) events, atomically validated (any invalid: nothing written); results in order.
        Each event is an :class:`Event` or a mapping with the keys of :meth:`publish`."""
        msgs = []
        for e in events:
            if isinstance(e, Event):
                msgs.append(_publish_message(e.stream, e.payload, e.idempotency_key, e.correlation_id, e.source))
            else:
                msgs.append(_publish_message(e["stream"], e["payload"], e.get("idempotency_key"),
                                             e.get("correlation_id"), e.get("source")))
        r = await self._call("PublishBatch", pb.PublishBatchRequest(events=msgs))
        return [_publish_result(x) for x in r.results]

    async def publish_info(self, channel: str, payload: Mapping[str, Any], *, correlation_id: str | None = None,
                           source: str | None = None) -> PublishResult:
        """Publish to an informational channel (at-most-once: only current subscribers get it)."""
        m = pb.PublishInfoRequest(channel=channel, payload_json=_dumps(payload))
        if correlation_id is not None:
            m.correlation_id = correlation_id
        if source is not None:
            m.source = source
        return _publish_result(await self._call("PublishInfo", m))

    # -- consume
    def subscribe(self, stream: str, group: str, consumer: str, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> Subscription:
        """Deliveries for ``consumer`` of ``group``; at most ``max_in_flight`` un-acked at once."""
        return Subscription(self, stream, group, consumer, max_in_flight)

    async def ack(self, stream: str, group: str, ids: Sequence[str]) -> int:
        """Acknowledge entries by id (outside a subscription). Returns how many were pending."""
        return int((await self._call("Ack", pb.AckRequest(stream=stream, group=group, ids=list(ids)))).acked)

    async def extend(self, stream: str, group: str, consumer: str, ids: Sequence[str]) -> int:
        """Restart the claim idle time of entries still pending for ``consumer``; returns how many."""
        m = pb.ExtendRequest(stream=stream, group=group, consumer=consumer, ids=list(ids))
        return int((await self._call("Extend", m)).extended)

    async def nack(self, stream: str, group: str, entry_id: str, reason: str) -> NackResult:
        r = await self._call("Nack", pb.NackRequest(stream=stream, group=group, id=entry_id, reason=reason))
        return _nack_result(r)

    async def subscribe_channel(self, *channels: str) -> AsyncIterator[ChannelMessage]:
        """Messages published on informational channels from now on; reconnects on UNAVAILABLE
        (messages published while disconnected are not received: channels are at-most-once)."""
        attempt = 0
        while True:
            call = self._stub.SubscribeChannel(pb.SubscribeChannelRequest(channels=list(channels)), metadata=self._metadata)
            try:
                async for m in call:
                    attempt = 0
                    yield ChannelMessage(channel=m.channel, payload=json.loads(m.payload_json), meta=_meta(m.metadata))
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRY_CODES or not self.reconnect:
                    raise from_rpc_error(exc) from None
            finally:
                call.cancel()
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    # -- admin
    async def status(self, streams: Sequence[str] = ()) -> BusStatus:
        r = await self._call("Status", pb.StatusRequest(streams=list(streams)))
        return BusStatus(
            redis_version=r.redis_version,
            streams=[_stream_status(s) for s in r.streams],
            channels=list(r.channels),
            alerts=[_alert(a) for a in r.alerts],
            generated_at_ms=r.generated_at_ms,
        )

    async def create_group(self, stream: str, group: str, start: str = "new") -> bool:
        """Create a group at ``new``, ``all`` or after an entry id. False if it already existed."""
        return bool((await self._call("CreateGroup", pb.CreateGroupRequest(stream=stream, group=group, start=start))).created)

    async def rewind(self, stream: str, group: str, *, to_id: str | None = None, to_time_ms: int | None = None) -> str:
        m = pb.RewindRequest(stream=stream, group=group)
        if to_id is not None:
            m.to_id = to_id
        if to_time_ms is not None:
            m.to_time_ms = to_time_ms
        return str((await self._call("Rewind", m)).id)

    async def destroy_group(self, stream: str, group: str, *, force: bool = False) -> int:
        """Destroy a group; returns the pending entries it held."""
        return int((await self._call("DestroyGroup", pb.DestroyGroupRequest(stream=stream, group=group, force=force))).pending)

    async def list_dead_letters(self, stream: str, *, count: int = DEFAULT_DLQ_LIST_COUNT, after: str | None = None) -> list[DeadLetter]:
        m = pb.ListDeadLettersRequest(stream=stream, count=count)
        if after is not None:
            m.after = after
        r = await self._call("ListDeadLetters", m)
        return [
            DeadLetter(d.dlq_id, d.stream, d.original_id, d.group, d.reason, d.delivery_count, d.dead_lettered_at_ms,
                       json.loads(d.payload_json), _meta(d.metadata))
            for d in r.entries
        ]

    async def replay_dead_letters(self, stream: str, ids: Sequence[str] | None = None) -> list[ReplayResult]:
        """Replay the given dead letters, or every one when ``ids`` is None."""
        m = pb.ReplayDeadLettersRequest(stream=stream, ids=list(ids or ()), all=ids is None)
        return [ReplayResult(x.dlq_id, x.new_id) for x in (await self._call("ReplayDeadLetters", m)).replayed]

    async def list_streams(self) -> list[StreamInfo]:
        r = await self._call("ListStreams", pb.ListStreamsRequest())
        return [StreamInfo(s.name, list(s.groups), s.retention) for s in r.streams]

    async def list_channels(self) -> list[str]:
        return list((await self._call("ListChannels", pb.ListChannelsRequest())).channels)

    async def list_groups(self, stream: str | None = None) -> list[tuple[str, str]]:
        m = pb.ListGroupsRequest()
        if stream is not None:
            m.stream = stream
        return [(g.stream, g.name) for g in (await self._call("ListGroups", m)).groups]
