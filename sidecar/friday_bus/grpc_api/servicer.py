"""The gRPC servicer: converts messages and delegates to the :class:`EventBus`. No Streams logic.

Errors are not handled here: core errors propagate to the error-mapping interceptor
(:mod:`.interceptors`), the one place that turns them into status codes. The only
exceptions are inside long-lived calls (Subscribe, PublishStream), where the answer to one
ack / nack / event carries its error (the core's classification, no status code) and the
call goes on.

The long-lived calls share one shape (:mod:`.pumps`): loops feed a queue the call drains,
until the client leaves, a loop fails or the sidecar shuts down. The server side of a
Subscribe call (credit, ack batching, drain on shutdown) is :mod:`.subscription`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
from friday_bus_client._proto import eventbus_pb2 as pb
from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc

from ..core import EventBus, Runtime
from ..core.errors import FridayError, InvalidArgument, Unavailable
from ..core.limits import DEFAULT_DLQ_LIST_COUNT, DEFAULT_MAX_IN_FLIGHT, MAX_IN_FLIGHT
from . import convert
from .pumps import End, until_stopped
from .subscription import SubscribeCall

log = logging.getLogger("friday.grpc")

# Events read ahead (not yet written) on one PublishStream call.
PUBLISH_STREAM_WINDOW = 256
# Channel messages received ahead (not yet sent) on one SubscribeChannel call.
CHANNEL_WINDOW = 1024


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
        return convert.publish_response(
            await self._bus().publish(convert.publish_request(request, convert.trace_context(context.invocation_metadata())))
        )

    async def PublishBatch(self, request: pb.PublishBatchRequest, context: grpc.aio.ServicerContext) -> pb.PublishBatchResponse:
        reqs = []
        trace = convert.trace_context(context.invocation_metadata())
        for i, m in enumerate(request.events):
            try:
                reqs.append(convert.publish_request(m, trace))
            except InvalidArgument as exc:
                raise InvalidArgument(f"events[{i}]: {exc.message}", field=exc.field) from None
        results = await self._bus().publish_batch(reqs)
        return pb.PublishBatchResponse(results=[convert.publish_response(r) for r in results])

    async def PublishStream(
        self, request_iterator: AsyncIterator[pb.PublishStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.PublishStreamResponse]:
        bus = self._bus()
        trace = convert.trace_context(context.invocation_metadata())  # the call's: every event of it
        inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=PUBLISH_STREAM_WINDOW)

        async def read() -> None:
            async for m in request_iterator:
                await inbox.put(m)
            await inbox.put(End())  # the client half-closed

        # On shutdown the reader stops: what was read is still written, what was not is not.
        calls = until_stopped("friday-publish-stream", inbox, {"reader": read()}, stopping=self.stopping,
                              stopped=Unavailable("the sidecar is shutting down; send the unanswered events again"))
        async with contextlib.aclosing(calls) as requests:
            async for m in requests:
                # One at a time, in order: events are written in the order they were sent.
                try:
                    result = await bus.publish(convert.publish_request(m.event, trace))
                except FridayError as exc:
                    yield pb.PublishStreamResponse(ref=m.ref, error=convert.error(exc))
                else:
                    yield pb.PublishStreamResponse(ref=m.ref, result=convert.publish_response(result))

    async def PublishInfo(self, request: pb.PublishInfoRequest, context: grpc.aio.ServicerContext) -> pb.PublishResponse:
        bus = self._bus()
        bus.check_channel(request.channel)  # the core's check and message, the same for both doors
        req = pb.PublishRequest(stream=request.channel, payload_json=request.payload_json)
        if request.HasField("source"):
            req.source = request.source
        if request.HasField("correlation_id"):
            req.correlation_id = request.correlation_id
        trace = convert.trace_context(context.invocation_metadata())
        return convert.publish_response(await bus.publish(convert.publish_request(req, trace)))

    # ------------------------------------------------------------------ consume
    async def Ack(self, request: pb.AckRequest, context: grpc.aio.ServicerContext) -> pb.AckResponse:
        return pb.AckResponse(acked=await self._bus().ack(request.stream, request.group, list(request.ids)))

    async def Extend(self, request: pb.ExtendRequest, context: grpc.aio.ServicerContext) -> pb.ExtendResponse:
        extended = await self._bus().extend(request.stream, request.group, request.consumer, list(request.ids))
        return pb.ExtendResponse(extended=extended)

    async def Release(self, request: pb.ReleaseRequest, context: grpc.aio.ServicerContext) -> pb.ReleaseResponse:
        if len(request.delivery_counts) != len(request.ids):
            raise InvalidArgument(
                f"give one delivery_count per id (got {len(request.ids)} ids, {len(request.delivery_counts)} counts)",
                field="delivery_counts",
            )
        deliveries = list(zip(request.ids, request.delivery_counts, strict=True))
        released = await self._bus().release(request.stream, request.group, request.consumer, deliveries)
        return pb.ReleaseResponse(released=released)

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
        # Unset: the default; set, 0 included, it is checked (the doors agree: 0 is refused).
        credit = start.max_in_flight if start.HasField("max_in_flight") else DEFAULT_MAX_IN_FLIGHT
        if not 1 <= credit <= MAX_IN_FLIGHT:
            raise InvalidArgument(f"max_in_flight must be between 1 and {MAX_IN_FLIGHT} (got {credit})", field="max_in_flight")
        bus = self._bus()
        stream, group, consumer = start.stream, start.group, start.consumer
        # The first read validates stream, group and consumer before the call is confirmed.
        reading = asyncio.ensure_future(bus.read(stream, group, consumer, count=credit, block_ms=0))
        try:
            initial = await asyncio.shield(reading)
        except asyncio.CancelledError:  # the client left: what the read took is never written
            bus.release_when_read(stream, group, consumer, reading)
            raise
        session = SubscribeCall(self.stopping, bus, request_iterator, stream, group, consumer, credit, initial)
        try:
            yield pb.SubscribeResponse(
                subscribed=pb.Subscribed(stream=stream, group=group, consumer=consumer, max_in_flight=credit)
            )
            async with contextlib.aclosing(session.run()) as messages:
                async for msg in messages:
                    yield msg
        finally:
            # However the call ends: what was read from Redis but never written goes back, uncounted.
            await session.release_unwritten()

    # ------------------------------------------------------------------ channels
    async def SubscribeChannel(
        self, request: pb.SubscribeChannelRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ChannelMessage]:
        bus = self._bus()
        inbox: asyncio.Queue[Any] = asyncio.Queue(maxsize=CHANNEL_WINDOW)

        async def pump() -> None:
            # bus.subscribe checks each channel (bus.check_channel); leaving closes the Redis subscription.
            async for m in bus.subscribe(list(request.channels)):
                await inbox.put(m)

        calls = until_stopped("friday-channel", inbox, {"pump": pump()}, stopping=self.stopping,
                              stopped=Unavailable("the sidecar is shutting down; subscribe again"))
        async with contextlib.aclosing(calls) as messages:
            async for m in messages:
                yield convert.channel_message(m)

    # ------------------------------------------------------------------ admin
    async def Status(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        return convert.status(await self._bus().status(list(request.streams) or None))

    async def CreateGroup(self, request: pb.CreateGroupRequest, context: grpc.aio.ServicerContext) -> pb.CreateGroupResponse:
        created = await self._bus().create_group(request.stream, request.group, request.start if request.HasField("start") else "new")
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
        count = request.count if request.HasField("count") else DEFAULT_DLQ_LIST_COUNT  # set: checked, 0 refused
        entries = await self._bus().dlq_list(request.stream, count=count, after=after)
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
