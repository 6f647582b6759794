"""The client side of Subscribe: deliveries, their ack / nack / extend, releases, and reconnection.

A :class:`Subscription` keeps one Subscribe call open for as long as it is iterated, and
opens a new one when the call fails with a retriable code (the sidecar restarting, Redis
briefly away). Acks made in the same loop turn travel as one message (up to MAX_ACK_IDS
ids), which the sidecar applies as one ack. A delivery whose call has ended is settled by
the unary RPC (Ack, Nack, Extend) instead: it can still be acked after a reconnect.

What the sidecar sends ahead (up to ``max_in_flight``) waits in a buffer until the
application takes it. Deliveries still buffered, never handed to the application, are
*released* (EventBus.release: redelivered at once, their delivery count as it was, so they
never count toward max_deliveries): when the subscription is closed (``close``, leaving
``async with``, ``FridayClient.close``) a SubscribeRelease goes out before the half-close
(anything that arrives after it, or that the call could not take, by the unary Release);
after a broken call, on the next call (same consumer name: the sidecar checks owner and
count, so a stale release does nothing). A :class:`Delivery` the application received and
did not settle stays pending: reclaimed after claim_idle_ms with its count raised, as for a
crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Self

import grpc

from . import convert
from ._proto import eventbus_pb2 as pb
from ._status import RETRY_CODES, from_error_message, from_rpc_error
from .convert import JSONObject
from .errors import FridayError
from .limits import MAX_ACK_IDS
from .models import NackResult

if TYPE_CHECKING:
    from .client import FridayClient

log = logging.getLogger("friday.client")

RELEASE_WAIT_S = 2.0
"""Longest ``close`` waits for the sidecar to confirm its release and end the call, and then for
the unary Release of what is left; past that, those deliveries stay pending (reclaimed later)."""


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
        self.metadata = convert.meta(m.metadata)
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
        self.half_closed = False
        self._refs = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self._ack_buffer: list[tuple[str, asyncio.Future[None]]] = []
        self._flush_task: asyncio.Task[None] | None = None
        self._waiting: dict[int, list[asyncio.Future[Any]]] = {}

    async def _write(self, msg: pb.SubscribeRequest) -> None:
        async with self._write_lock:
            if not self.alive or self.half_closed:
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

    async def release(self, deliveries: list[Delivery]) -> asyncio.Future[Any]:
        """Write a SubscribeRelease (ids and the counts they were received with); returns the
        future of its answer (how many were released). Raises _SessionLost if it cannot be written."""
        ref = next(self._refs)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = [fut]
        msg = pb.SubscribeRelease(ref=ref, ids=[d.id for d in deliveries], delivery_counts=[d.delivery_count for d in deliveries])
        try:
            await self._write(pb.SubscribeRequest(release=msg))
        except _SessionLost:
            self._waiting.pop(ref, None)
            raise
        return fut

    async def flush_acks(self) -> None:
        """Write the acks queued so far (their answers are not awaited)."""
        if self._flush_task is not None and not self._flush_task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flush_task)

    async def finish_writing(self) -> None:
        """Half-close: nothing more is sent on this call (later writes raise _SessionLost)."""
        async with self._write_lock:
            if not self.alive or self.half_closed:
                return
            self.half_closed = True
            try:
                await self.call.done_writing()
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                raise _SessionLost() from exc

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
    or :meth:`close` (``FridayClient.close`` closes every subscription).

    Deliveries buffered and never handed to the application are given back (released) when
    the subscription closes, and after a broken call on the next one: they are redelivered
    with their delivery count as it was. Deliveries the application received and did not
    settle stay pending (reclaimed after claim_idle_ms, their count raised)."""

    def __init__(self, client: FridayClient, stream: str, group: str, consumer: str, max_in_flight: int | None) -> None:
        self._client = client
        self.stream, self.group, self.consumer = stream, group, consumer
        self.max_in_flight = max_in_flight  # None: not sent, the sidecar's default
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._session: _Session | None = None
        self._subscribed = asyncio.Event()
        self._fallbacks: set[asyncio.Task[None]] = set()
        self._unreleased: list[Delivery] = []  # of ended calls, never handed out: release on the next call
        self._late: list[Delivery] = []  # arrived after close() began: never handed out
        self._finished = False
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
        """End the call. Deliveries still buffered (never handed to the application) are released
        first: a SubscribeRelease, then the half-close, then a bounded wait (RELEASE_WAIT_S) for
        the answer and the end of the call; what arrived after it, or what the call could not
        take, goes by the unary Release (also bounded). Deliveries the application received
        and did not settle stay pending in the sidecar (reclaimed after claim_idle_ms)."""
        if self._finished:
            return
        self._finished = True
        self._closed = True
        leftovers = self._take_buffered() + self._unreleased
        self._unreleased = []
        unconfirmed = leftovers
        session = self._session
        if session is not None and session.alive and self._subscribed.is_set() and self._task is not None:
            unconfirmed = await self._release_and_half_close(session, leftovers)
        if self._session is not None:
            self._session.end()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        late, self._late = self._late + self._take_buffered(), []
        await self._release_unary(unconfirmed + late)
        self._queue.put_nowait(_CLOSED)
        self._client._subscriptions.discard(self)

    async def _release_and_half_close(self, session: _Session, deliveries: list[Delivery]) -> list[Delivery]:
        """Release ``deliveries`` on the call, half-close, and wait (bounded) for the answers and
        the end of the call. Returns the deliveries whose release was not confirmed."""
        answers: list[tuple[list[Delivery], asyncio.Future[Any]]] = []
        unsent: list[Delivery] = []
        await session.flush_acks()  # acks made before closing travel first
        for i in range(0, len(deliveries), MAX_ACK_IDS):
            chunk = deliveries[i:i + MAX_ACK_IDS]
            try:
                answers.append((chunk, await session.release(chunk)))
            except _SessionLost:
                unsent += chunk
        with contextlib.suppress(_SessionLost):
            await session.finish_writing()
        assert self._task is not None
        waits: list[Awaitable[Any]] = [self._task, *(f for _, f in answers)]
        await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=RELEASE_WAIT_S)
        for chunk, fut in answers:
            if not fut.done() or fut.cancelled() or fut.exception() is not None:
                unsent += chunk
        return unsent

    async def _release_unary(self, deliveries: list[Delivery]) -> None:
        """Give back deliveries outside a call (bounded by RELEASE_WAIT_S); failures are logged:
        those deliveries stay pending and are reclaimed later."""
        if not deliveries:
            return
        try:
            await asyncio.wait_for(self._client.release(self.stream, self.group, self.consumer, deliveries), RELEASE_WAIT_S)
        except (FridayError, TimeoutError, grpc.aio.AioRpcError) as exc:
            log.warning("could not give back %d deliveries of %s/%s never handed to the application (%s); "
                        "they are redelivered after the claim idle time", len(deliveries), self.stream, self.group, exc)

    def _take_buffered(self, session: _Session | None = None) -> list[Delivery]:
        """Remove from the buffer the deliveries not yet handed to the application (of ``session``
        only, if given); everything else stays queued in order."""
        taken: list[Delivery] = []
        kept: list[Any] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, Delivery) and (session is None or item._session is session):
                taken.append(item)
            else:
                kept.append(item)
        for item in kept:
            self._queue.put_nowait(item)
        return taken

    async def _release_previous(self, session: _Session) -> None:
        """On a new call: release the deliveries of ended calls that were never handed out."""
        while self._unreleased and session.alive:
            batch = self._unreleased[:MAX_ACK_IDS]
            try:
                await (await session.release(batch))
            except _SessionLost:
                return  # still to release: the next call tries again
            except FridayError as exc:
                log.warning("the sidecar refused to release %d deliveries of %s/%s (%s)", len(batch), self.stream, self.group, exc)
            done = {id(d) for d in batch}
            self._unreleased = [d for d in self._unreleased if id(d) not in done]

    async def __aenter__(self) -> Self:
        self._ensure_started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delivery:
        """The next delivery. Cancelling the wait (e.g. ``asyncio.wait_for``) loses nothing.
        Once the subscription is closed nothing more is handed out (the buffer was released)."""
        self._ensure_started()
        if self._closed:
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
                start = pb.SubscribeStart(stream=self.stream, group=self.group, consumer=self.consumer)
                if self.max_in_flight is not None:
                    start.max_in_flight = self.max_in_flight
                await call.write(pb.SubscribeRequest(start=start))
                while True:
                    msg = await call.read()
                    if msg is grpc.aio.EOF:
                        break  # the sidecar ended the call without an error: subscribe again
                    kind = msg.WhichOneof("kind")
                    if kind == "deliveries":
                        for m in msg.deliveries.deliveries:
                            d = Delivery(self, session, m)
                            if self._closed:
                                self._late.append(d)  # close() began: never handed out, released
                            else:
                                self._queue.put_nowait(d)
                    elif kind == "ack_result":
                        r = msg.ack_result
                        session.resolve(r.ref, r.error if r.HasField("error") else None, None)
                    elif kind == "nack_result":
                        r = msg.nack_result
                        session.resolve(r.ref, r.error if r.HasField("error") else None,
                                        convert.nack_result(r.result) if r.HasField("result") else None)
                    elif kind == "extend_result":
                        r = msg.extend_result
                        session.resolve(r.ref, r.error if r.HasField("error") else None, r.extended)
                    elif kind == "release_result":
                        r = msg.release_result
                        session.resolve(r.ref, r.error if r.HasField("error") else None, r.released)
                    elif kind == "subscribed":
                        attempt = 0
                        self._subscribed.set()
                        if self._unreleased:
                            self._fallbacks.add(t := asyncio.create_task(self._release_previous(session)))
                            t.add_done_callback(self._fallbacks.discard)
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
            # Buffered and never handed out: released on the next call (with their counts).
            self._unreleased += self._take_buffered(session)
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
