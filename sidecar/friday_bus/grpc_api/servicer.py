"""The gRPC servicer: converts messages and delegates to the :class:`EventBus`. No Streams logic.

Errors are not handled here: core errors propagate to the error-mapping interceptor
(:mod:`.interceptors`), the one place that turns them into status codes. The only
exceptions are inside long-lived calls (Subscribe, PublishStream), where the answer to one
ack / nack / event carries its error (the core's classification, no status code) and the
call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc

from .._proto import eventbus_pb2 as pb
from .._proto import eventbus_pb2_grpc as pb_grpc
from ..core import EventBus, Runtime
from ..core.errors import FridayError, InvalidArgument, NotFound, Unavailable
from ..core.limits import DEFAULT_DLQ_LIST_COUNT, DEFAULT_MAX_IN_FLIGHT, MAX_ACK_IDS, MAX_IN_FLIGHT
from ..core.models import Delivery
from ..core.names import check_entry_id
from . import convert

log = logging.getLogger("friday.grpc")

# How long one read of a Subscribe call blocks in Redis. A departing client or a shutdown
# cancels the read at once, so this only bounds how stale a read's `count` can get.
SUBSCRIBE_BLOCK_MS = 5_000
# Events read ahead (not yet written) on one PublishStream call.
PUBLISH_STREAM_WINDOW = 256
# Deliveries travel in batches of about this much payload (one larger delivery goes alone).
BATCH_BYTES = 1024 * 1024


class _End:
    """Queue marker: end the Subscribe call (optionally with an error)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class EventBusServicer(pb_grpc.EventBusServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stopping = asyncio.Event()

    def begin_shutdown(self) -> None:
        """Stop delivering: Subscribe calls drain their acks and end with UNAVAILABLE."""
        self.stopping.set()

    def _bus(self) -> EventBus:
        bus = self.runtime.bus
        if bus is None or not self.runtime.ready:
            raise Unavailable("the sidecar is starting or stopping; retry in a moment")
        return bus

    # ------------------------------------------------------------------ publish
    async def Publish(self, request: pb.PublishRequest, context: grpc.aio.ServicerContext) -> pb.PublishResponse:
        return convert.publish_response(await self._bus().publish(convert.publish_request(request)))

    async def PublishBatch(self, request: pb.PublishBatchRequest, context: grpc.aio.ServicerContext) -> pb.PublishBatchResponse:
        reqs = []
        for i, m in enumerate(request.events):
            try:
                reqs.append(convert.publish_request(m))
            except InvalidArgument as exc:
                raise InvalidArgument(f"events[{i}]: {exc.message}", field=exc.field) from None
        results = await self._bus().publish_batch(reqs)
        return pb.PublishBatchResponse(results=[convert.publish_response(r) for r in results])

    async def PublishStream(
        self, request_iterator: AsyncIterator[pb.PublishStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.PublishStreamResponse]:
        bus = self._bus()
        inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=PUBLISH_STREAM_WINDOW)

        async def read() -> None:
            try:
                async for m in request_iterator:
                    await inbox.put(m)
                await inbox.put(None)  # the client half-closed
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the call
                await inbox.put(_End(exc))

        async def watch() -> None:
            await self.stopping.wait()
            reader.cancel()  # read no more: what was not read is not written
            await inbox.put(_End(Unavailable("the sidecar is shutting down; send the unanswered events again")))

        reader = asyncio.create_task(read(), name="friday-publish-stream-reader")
        watcher = asyncio.create_task(watch(), name="friday-publish-stream-watch")
        try:
            while True:
                m = await inbox.get()
                if m is None:
                    return
                if isinstance(m, _End):
                    raise m.error  # type: ignore[misc]
                # One at a time, in order: events are written in the order they were sent.
                try:
                    result = await bus.publish(convert.publish_request(m.event))
                except FridayError as exc:
                    yield pb.PublishStreamResponse(ref=m.ref, error=convert.error(exc))
                else:
                    yield pb.PublishStreamResponse(ref=m.ref, result=convert.publish_response(result))
        finally:
            for t in (reader, watcher):
                t.cancel()
            for t in (reader, watcher):
                with contextlib.suppress(BaseException):
                    await t

    async def PublishInfo(self, request: pb.PublishInfoRequest, context: grpc.aio.ServicerContext) -> pb.PublishResponse:
        bus = self._bus()
        bus.check_channel(request.channel)  # the core's check and message, the same for both doors
        req = pb.PublishRequest(stream=request.channel, payload_json=request.payload_json)
        if request.HasField("source"):
            req.source = request.source
        if request.HasField("correlation_id"):
            req.correlation_id = request.correlation_id
        return convert.publish_response(await bus.publish(convert.publish_request(req)))

    # ------------------------------------------------------------------ consume
    async def Ack(self, request: pb.AckRequest, context: grpc.aio.ServicerContext) -> pb.AckResponse:
        return pb.AckResponse(acked=await self._bus().ack(request.stream, request.group, list(request.ids)))

    async def Extend(self, request: pb.ExtendRequest, context: grpc.aio.ServicerContext) -> pb.ExtendResponse:
        extended = await self._bus().extend(request.stream, request.group, request.consumer, list(request.ids))
        return pb.ExtendResponse(extended=extended)

    async def Nack(self, request: pb.NackRequest, context: grpc.aio.ServicerContext) -> pb.NackResponse:
        return convert.nack_response(await self._bus().nack(request.stream, request.group, request.id, request.reason))

    async def Subscribe(
        self, request_iterator: AsyncIterator[pb.SubscribeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SubscribeResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("kind") != "start":
            raise InvalidArgument(
                "the first Subscribe message must be `start` with stream, group, consumer and max_in_flight", field="start"
            )
        start = first.start
        credit = start.max_in_flight or DEFAULT_MAX_IN_FLIGHT
        if not 1 <= credit <= MAX_IN_FLIGHT:
            raise InvalidArgument(f"max_in_flight must be between 1 and {MAX_IN_FLIGHT} (got {credit})", field="max_in_flight")
        bus = self._bus()
        stream, group, consumer = start.stream, start.group, start.consumer
        # The first read validates stream, group and consumer before the call is confirmed.
        initial = await bus.read(stream, group, consumer, count=credit, block_ms=0)
        yield pb.SubscribeResponse(
            subscribed=pb.Subscribed(stream=stream, group=group, consumer=consumer, max_in_flight=credit)
        )
        session = _Subscription(self, bus, request_iterator, stream, group, consumer, credit)
        async for msg in session.run(initial):
            yield msg

    # ------------------------------------------------------------------ channels
    async def SubscribeChannel(
        self, request: pb.SubscribeChannelRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ChannelMessage]:
        bus = self._bus()
        inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)

        async def pump() -> None:
            try:
                async for m in bus.subscribe(list(request.channels)):
                    await inbox.put(m)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the call, which the interceptor maps
                await inbox.put(_End(exc))

        async def watch() -> None:
            await self.stopping.wait()
            await inbox.put(_End(Unavailable("the sidecar is shutting down; subscribe again")))

        tasks = [asyncio.create_task(pump(), name="friday-channel-pump"), asyncio.create_task(watch(), name="friday-channel-watch")]
        try:
            while True:
                m = await inbox.get()
                if isinstance(m, _End):
                    raise m.error  # type: ignore[misc]
                yield convert.channel_message(m)
        finally:
            for t in tasks:
                t.cancel()  # the pump's cancellation closes the Redis subscription
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    # ------------------------------------------------------------------ admin
    async def Status(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        return convert.status(await self._bus().status(list(request.streams) or None))

    async def CreateGroup(self, request: pb.CreateGroupRequest, context: grpc.aio.ServicerContext) -> pb.CreateGroupResponse:
        created = await self._bus().create_group(request.stream, request.group, request.start or "new")
        return pb.CreateGroupResponse(created=created)

    async def Rewind(self, request: pb.RewindRequest, context: grpc.aio.ServicerContext) -> pb.RewindResponse:
        which = request.WhichOneof("to")
        to_id = request.to_id if which == "to_id" else None
        to_time_ms = request.to_time_ms if which == "to_time_ms" else None
        return pb.RewindResponse(id=await self._bus().rewind(request.stream, request.group, to_id=to_id, to_time_ms=to_time_ms))

    async def DestroyGroup(self, request: pb.DestroyGroupRequest, context: grpc.aio.ServicerContext) -> pb.DestroyGroupResponse:
        pending = await self._bus().destroy_group(request.stream, request.group, force=request.force)
        return pb.DestroyGroupResponse(destroyed=True, pending=pending)

    async def ListDeadLetters(
        self, request: pb.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeadLettersResponse:
        after = request.after if request.HasField("after") else None
        entries = await self._bus().dlq_list(request.stream, count=request.count or DEFAULT_DLQ_LIST_COUNT, after=after)
        return pb.ListDeadLettersResponse(entries=[convert.dead_letter(d) for d in entries])

    async def ReplayDeadLetters(
        self, request: pb.ReplayDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReplayDeadLettersResponse:
        if request.all and request.ids:
            raise InvalidArgument("give ids or all=true, not both", field="ids")
        if not request.all and not request.ids:
            raise InvalidArgument("name the dead letters to replay in ids, or set all=true to replay every one", field="ids")
        results = await self._bus().dlq_replay(request.stream, "all" if request.all else list(request.ids))
        return pb.ReplayDeadLettersResponse(replayed=[pb.Replayed(dlq_id=r.dlq_id, new_id=r.new_entry_id) for r in results])

    async def ListStreams(self, request: pb.ListStreamsRequest, context: grpc.aio.ServicerContext) -> pb.ListStreamsResponse:
        return pb.ListStreamsResponse(streams=[convert.stream_info(i) for i in await self._bus().list_streams()])

    async def ListChannels(self, request: pb.ListChannelsRequest, context: grpc.aio.ServicerContext) -> pb.ListChannelsResponse:
        return pb.ListChannelsResponse(channels=self._bus().channel_names())

    async def ListGroups(self, request: pb.ListGroupsRequest, context: grpc.aio.ServicerContext) -> pb.ListGroupsResponse:
        stream = request.stream if request.HasField("stream") else None
        pairs = await self._bus().list_groups(stream)
        return pb.ListGroupsResponse(groups=[pb.GroupRef(stream=s, name=g) for s, g in pairs])


class _Subscription:
    """One Subscribe call. A pump reads deliveries within the credit; a reader takes the
    client's messages into an inbox; a worker applies them in order, acks that arrived
    together in one call to the bus. All three feed one bounded queue that the call drains."""

    def __init__(
        self,
        servicer: EventBusServicer,
        bus: EventBus,
        requests: AsyncIterator[pb.SubscribeRequest],
        stream: str,
        group: str,
        consumer: str,
        credit: int,
    ) -> None:
        self.servicer = servicer
        self.bus = bus
        self.requests = requests
        self.stream, self.group, self.consumer = stream, group, consumer
        self.credit = credit
        self.in_flight: set[str] = set()
        self.credit_returned = asyncio.Event()
        # Bounded: a client that sends acks without reading the answers is slowed down.
        self.out: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * credit + 16)
        self.inbox: deque[Any] = deque()
        self.inbox_ready = asyncio.Event()
        self.inbox_space = asyncio.Event()
        self.inbox_space.set()
        self.inbox_max = 2 * credit + 16

    async def run(self, initial: list[Delivery]) -> AsyncIterator[pb.SubscribeResponse]:
        for msg in self._batches(initial):
            yield msg
        tasks = [
            asyncio.create_task(self._guard(self._pump()), name="friday-subscribe-pump"),
            asyncio.create_task(self._guard(self._reader()), name="friday-subscribe-reader"),
            asyncio.create_task(self._guard(self._worker()), name="friday-subscribe-worker"),
        ]
        try:
            while True:
                item = await self.out.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the call, which the interceptor maps
            await self.out.put(_End(exc))

    def _shutdown_drained(self) -> bool:
        return self.servicer.stopping.is_set() and not self.in_flight

    def _batches(self, deliveries: list[Delivery]) -> list[pb.SubscribeResponse]:
        """Deliveries as messages of about BATCH_BYTES of payload each; marks them in flight."""
        out: list[pb.SubscribeResponse] = []
        batch: list[pb.Delivery] = []
        size = 0
        for d in deliveries:
            self.in_flight.add(d.entry_id)
            m = convert.delivery(d)
            if batch and size + len(m.payload_json) > BATCH_BYTES:
                out.append(pb.SubscribeResponse(deliveries=pb.DeliveryBatch(deliveries=batch)))
                batch, size = [], 0
            batch.append(m)
            size += len(m.payload_json)
        if batch:
            out.append(pb.SubscribeResponse(deliveries=pb.DeliveryBatch(deliveries=batch)))
        return out

    async def _pump(self) -> None:
        stopping = self.servicer.stopping
        while not stopping.is_set():
            free = self.credit - len(self.in_flight)
            if free <= 0:
                self.credit_returned.clear()
                waiters = [asyncio.ensure_future(self.credit_returned.wait()), asyncio.ensure_future(stopping.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
                continue
            read = asyncio.ensure_future(
                self.bus.read(self.stream, self.group, self.consumer, count=free, block_ms=SUBSCRIBE_BLOCK_MS)
            )
            stop = asyncio.ensure_future(stopping.wait())
            try:
                await asyncio.wait([read, stop], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                if not read.done():
                    # Client gone or shutting down: abandon the read. Entries it may have taken
                    # stay pending and are reclaimed after claim_idle_ms, like those of any
                    # departed consumer.
                    read.cancel()
                    with contextlib.suppress(BaseException):
                        await read
            if read.cancelled():
                break
            for msg in self._batches(read.result()):
                await self.out.put(msg)
        if self._shutdown_drained():
            await self.out.put(_End(Unavailable("the sidecar is shutting down; subscribe again")))

    def _release(self, ids: list[str]) -> None:
        before = len(self.in_flight)
        self.in_flight.difference_update(ids)
        if len(self.in_flight) < before:
            self.credit_returned.set()

    async def _reader(self) -> None:
        async for msg in self.requests:
            while len(self.inbox) >= self.inbox_max:
                self.inbox_space.clear()
                await self.inbox_space.wait()
            self.inbox.append(msg)
            self.inbox_ready.set()
        self.inbox.append(_HALF_CLOSED)  # the client will send no more acks
        self.inbox_ready.set()

    async def _next(self) -> Any:
        while not self.inbox:
            self.inbox_ready.clear()
            await self.inbox_ready.wait()
        self.inbox_space.set()
        return self.inbox.popleft()

    def _take_acks(self, first: pb.SubscribeAck) -> list[pb.SubscribeAck]:
        """``first`` and the acks queued right behind it, up to MAX_ACK_IDS ids together.
        Only well-formed acks are joined; a bad one is applied alone, to answer it alone."""
        acks = [first]
        if not _plain_ack(first):
            return acks
        total = len(first.ids)
        while self.inbox:
            nxt = self.inbox[0]
            if nxt is _HALF_CLOSED or nxt.WhichOneof("kind") != "ack" or not _plain_ack(nxt.ack):
                break
            if total + len(nxt.ack.ids) > MAX_ACK_IDS:
                break
            self.inbox.popleft()
            acks.append(nxt.ack)
            total += len(nxt.ack.ids)
        self.inbox_space.set()
        return acks

    async def _worker(self) -> None:
        while True:
            msg = await self._next()
            if msg is _HALF_CLOSED:
                # The client half-closed: end the call; what it holds stays pending.
                await self.out.put(_End())
                return
            kind = msg.WhichOneof("kind")
            if kind == "ack":
                acks = self._take_acks(msg.ack)
                ids = [i for a in acks for i in a.ids]
                try:
                    await self.bus.ack(self.stream, self.group, ids)
                except FridayError as exc:
                    for a in acks:
                        await self.out.put(pb.SubscribeResponse(ack_result=pb.SubscribeAckResult(ref=a.ref, error=convert.error(exc))))
                else:
                    self._release(ids)
                    for a in acks:
                        await self.out.put(pb.SubscribeResponse(ack_result=pb.SubscribeAckResult(ref=a.ref)))
            elif kind == "nack":
                n = msg.nack
                try:
                    result = await self.bus.nack(self.stream, self.group, n.id, n.reason)
                except FridayError as exc:
                    if isinstance(exc, NotFound) and exc.field == "id":
                        self._release([n.id])  # no longer pending: it holds no credit any more
                    await self.out.put(pb.SubscribeResponse(nack_result=pb.SubscribeNackResult(ref=n.ref, error=convert.error(exc))))
                else:
                    self._release([n.id])
                    await self.out.put(
                        pb.SubscribeResponse(nack_result=pb.SubscribeNackResult(ref=n.ref, result=convert.nack_response(result)))
                    )
            elif kind == "extend":
                x = msg.extend
                try:
                    extended = await self.bus.extend(self.stream, self.group, self.consumer, list(x.ids))
                except FridayError as exc:
                    await self.out.put(pb.SubscribeResponse(extend_result=pb.SubscribeExtendResult(ref=x.ref, error=convert.error(exc))))
                else:
                    await self.out.put(pb.SubscribeResponse(extend_result=pb.SubscribeExtendResult(ref=x.ref, extended=extended)))
            else:
                raise InvalidArgument("`start` may be sent only once, as the first message of a Subscribe call", field="start")
            if self._shutdown_drained():
                await self.out.put(_End(Unavailable("the sidecar is shutting down; subscribe again")))
                return


_HALF_CLOSED = object()


def _plain_ack(a: pb.SubscribeAck) -> bool:
    """An ack the bus will take as it is (so it can be joined with others)."""
    if not 1 <= len(a.ids) <= MAX_ACK_IDS:
        return False
    try:
        for i in a.ids:
            check_entry_id(i, "ids")
    except InvalidArgument:
        return False
    return True
