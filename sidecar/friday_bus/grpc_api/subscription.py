"""The server side of one Subscribe call: credit, deliveries, and the client's acks,
nacks and extends on the same stream.

Contract (see the proto's Subscribe):

* at most ``credit`` (``max_in_flight``) deliveries are un-settled at once; the sidecar does
  not even read more than that from Redis;
* each ack / nack / extend is answered once, by ``ref``, with its result or the core's error
  (the call goes on); acks queued together (well-formed, up to MAX_ACK_IDS ids) are applied
  by ONE ack call to the bus, each still answered on its own;
* a half-close by the client ends the call cleanly; what it holds stays pending (reclaimed
  after claim_idle_ms, like the entries of any departed consumer);
* on shutdown (``stopping``) nothing more is delivered; acks keep being applied until no
  delivery is in flight, then the call ends with UNAVAILABLE so the client subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from .._proto import eventbus_pb2 as pb
from ..core import EventBus
from ..core.errors import FridayError, InvalidArgument, NotFound, Unavailable
from ..core.limits import MAX_ACK_IDS
from ..core.models import Delivery
from ..core.names import check_entry_id
from . import convert
from .pumps import End, unless_stopped, until_stopped

# How long one read of a Subscribe call blocks in Redis. A departing client or a shutdown
# cancels the read at once, so this only bounds how stale a read's `count` can get.
SUBSCRIBE_BLOCK_MS = 5_000
# Deliveries travel in batches of about this much payload (one larger delivery goes alone).
BATCH_BYTES = 1024 * 1024


def _shutting_down() -> Unavailable:
    return Unavailable("the sidecar is shutting down; subscribe again")


class SubscribeCall:
    """One Subscribe call, after its ``start``. A pump reads deliveries within the credit; a
    reader takes the client's messages into an inbox; a worker applies them in order, acks
    that arrived together in one call to the bus. All three feed one bounded queue that the
    call drains (:func:`.pumps.until_stopped`)."""

    def __init__(
        self,
        stopping: asyncio.Event,
        bus: EventBus,
        requests: AsyncIterator[pb.SubscribeRequest],
        stream: str,
        group: str,
        consumer: str,
        credit: int,
    ) -> None:
        self.stopping = stopping
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

    async def run(self, initial: list[Delivery]) -> AsyncGenerator[pb.SubscribeResponse, None]:
        """The call's messages: ``initial`` (read when the call was confirmed), then whatever
        the pump and the worker queue. Raises the error that ends the call."""
        for msg in self._batches(initial):
            yield msg
        loops = {"pump": self._pump(), "reader": self._reader(), "worker": self._worker()}
        async with contextlib.aclosing(until_stopped("friday-subscribe", self.out, loops)) as items:
            async for item in items:
                yield item

    def _shutdown_drained(self) -> bool:
        return self.stopping.is_set() and not self.in_flight

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
        stopping = self.stopping
        while not stopping.is_set():
            free = self.credit - len(self.in_flight)
            if free <= 0:
                self.credit_returned.clear()
                await unless_stopped(self.credit_returned.wait(), stopping)
                continue
            # Client gone or shutting down: the read is abandoned. Entries it may have taken
            # stay pending and are reclaimed after claim_idle_ms, like those of any departed
            # consumer.
            read = await unless_stopped(
                self.bus.read(self.stream, self.group, self.consumer, count=free, block_ms=SUBSCRIBE_BLOCK_MS), stopping
            )
            if read is None:
                break
            for msg in self._batches(read.result()):
                await self.out.put(msg)
        if self._shutdown_drained():
            await self.out.put(End(_shutting_down()))

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
                await self.out.put(End())
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
                await self.out.put(End(_shutting_down()))
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
