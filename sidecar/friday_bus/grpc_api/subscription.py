"""The server side of one Subscribe call: credit, deliveries, and the client's acks,
nacks, extends and releases on the same stream.

Contract (see the proto's Subscribe):

* at most ``credit`` (``max_in_flight``) deliveries are un-settled at once; the sidecar does
  not even read more than that from Redis;
* each ack / nack / extend / release is answered once, by ``ref``, with its result or the
  core's error (the call goes on); acks queued together (well-formed, up to MAX_ACK_IDS ids)
  are applied by ONE ack call to the bus, each still answered on its own;
* a release gives back deliveries the client never handed to its code (EventBus.release:
  redelivered at once, their delivery count as it was) with the counts this call handed
  out (the call keeps id -> count of its unsettled deliveries), or with the counts the
  client gives (deliveries of an earlier call); their credit comes back;
* a half-close by the client ends the call cleanly; from then on no delivery is written;
* however the call ends (half-close, cancel, disconnect, shutdown), deliveries read from
  Redis but never written to the call are released by the sidecar (:meth:`SubscribeCall.release_unwritten`);
  deliveries written and neither settled nor released stay pending, as for a crash
  (reclaimed after claim_idle_ms with their count raised, like those of any departed consumer);
* on shutdown (``stopping``) nothing more is delivered; acks keep being applied until no
  delivery is in flight, then the call ends with UNAVAILABLE so the client subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from friday_bus_client._proto import eventbus_pb2 as pb

from ..core import EventBus
from ..core.errors import FridayError, InvalidArgument, NotFound, Unavailable
from ..core.limits import MAX_ACK_IDS
from ..core.models import Delivery
from ..core.names import check_entry_id
from . import convert
from .pumps import End, unless_stopped, until_stopped

log = logging.getLogger("friday.grpc")

# How long one read of a Subscribe call blocks in Redis. A read the call no longer waits for
# (the client left, the sidecar shuts down) is not cancelled - Redis may be answering it, and
# the entries of a cancelled answer would stay pending, to be counted again - but left to
# finish, and whatever it took is released (EventBus.release_when_read): this bounds how long it
# lingers, and how stale a read's `count` can get. A read never blocks longer than the claim
# interval either (FRIDAY_CLAIM_INTERVAL_MS): it would only loop inside the core meanwhile.
SUBSCRIBE_BLOCK_MS = 1_000
# Deliveries travel in batches of about this much payload (one larger delivery goes alone).
BATCH_BYTES = 1024 * 1024


def _shutting_down() -> Unavailable:
    return Unavailable("the sidecar is shutting down; subscribe again")


# Releases still running after their call ended (a call cancelled while giving back): kept
# referenced until done.
_GIVING_BACK: set[asyncio.Task[None]] = set()


async def _release(bus: EventBus, stream: str, group: str, consumer: str, pairs: list[tuple[str, int]]) -> None:
    for i in range(0, len(pairs), MAX_ACK_IDS):
        chunk = pairs[i:i + MAX_ACK_IDS]
        try:
            await bus.release(stream, group, consumer, chunk)
        except Exception as exc:  # noqa: BLE001 - nothing to answer: they stay pending, reclaimed later
            log.warning(
                "stream %s group %s: could not give back %d deliveries never written to %s (%s); "
                "they are reclaimed after the claim idle time", stream, group, len(chunk), consumer, exc,
            )


class SubscribeCall:
    """One Subscribe call, after its ``start``. A pump reads deliveries within the credit; a
    reader takes the client's messages into an inbox; a worker applies them in order, acks
    that arrived together in one call to the bus. All three feed one bounded queue that the
    call drains (:func:`.pumps.until_stopped`).

    ``in_flight`` maps each delivery of this call that holds credit (not yet acked, nacked or
    released) to the delivery count it was handed out with; ``unwritten`` holds those not yet
    written to the call. ``initial`` (read when the call was confirmed) counts as read."""

    def __init__(
        self,
        stopping: asyncio.Event,
        bus: EventBus,
        requests: AsyncIterator[pb.SubscribeRequest],
        stream: str,
        group: str,
        consumer: str,
        credit: int,
        initial: list[Delivery] | None = None,
    ) -> None:
        self.stopping = stopping
        self.bus = bus
        self.requests = requests
        self.stream, self.group, self.consumer = stream, group, consumer
        self.credit = credit
        self.block_ms = max(1, min(SUBSCRIBE_BLOCK_MS, bus.settings.claim_interval_ms))
        self.in_flight: dict[str, int] = {}
        self.unwritten: dict[str, int] = {}
        self.half_closed = False
        self.credit_returned = asyncio.Event()
        # Bounded: a client that sends acks without reading the answers is slowed down.
        self.out: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * credit + 16)
        self.inbox: deque[Any] = deque()
        self.inbox_ready = asyncio.Event()
        self.inbox_space = asyncio.Event()
        self.inbox_space.set()
        self.inbox_max = 2 * credit + 16
        self._initial = self._batches(initial or [])

    async def run(self) -> AsyncGenerator[pb.SubscribeResponse, None]:
        """The call's messages: the initial deliveries, then whatever the pump and the worker
        queue. A message is written once the caller comes back for the next one. Raises the
        error that ends the call."""
        initial, self._initial = self._initial, []
        for msg in initial:
            yield msg
            self._written(msg)
        loops = {"pump": self._pump(), "reader": self._reader(), "worker": self._worker()}
        async with contextlib.aclosing(until_stopped("friday-subscribe", self.out, loops)) as items:
            async for item in items:
                if item.WhichOneof("kind") != "deliveries":
                    yield item
                elif not self.half_closed:  # after a half-close: not written, released at the end
                    yield item
                    self._written(item)

    def _written(self, msg: pb.SubscribeResponse) -> None:
        for d in msg.deliveries.deliveries:
            self.unwritten.pop(d.id, None)

    async def release_unwritten(self) -> None:
        """Give back, uncounted, every delivery read for this call and never written to it (call
        it when the call ends, however it ends). Waits for the release unless cancelled meanwhile
        (it then completes in the background). A read still running is released when it ends
        (EventBus.release_when_read; the bus waits for that before it closes)."""
        pairs = list(self.unwritten.items())
        self.unwritten.clear()
        for eid, _ in pairs:
            self.in_flight.pop(eid, None)
        if pairs:
            task = asyncio.create_task(_release(self.bus, self.stream, self.group, self.consumer, pairs),
                                       name="friday-subscribe-release")
            _GIVING_BACK.add(task)
            task.add_done_callback(_GIVING_BACK.discard)
            await asyncio.shield(task)

    def _keep(self, reading: asyncio.Future[list[Delivery]]) -> None:
        """The call ends while ``reading``: what it took (or will take) is never written, so released."""
        if not reading.done():
            self.bus.release_when_read(self.stream, self.group, self.consumer, reading)
        elif not reading.cancelled() and reading.exception() is None:
            self._batches(reading.result())  # unwritten: released by release_unwritten

    def _shutdown_drained(self) -> bool:
        return self.stopping.is_set() and not self.in_flight

    def _batches(self, deliveries: list[Delivery]) -> list[pb.SubscribeResponse]:
        """Deliveries as messages of about BATCH_BYTES of payload each; marks them in flight."""
        out: list[pb.SubscribeResponse] = []
        batch: list[pb.Delivery] = []
        size = 0
        for d in deliveries:
            self.in_flight[d.entry_id] = d.delivery_count
            self.unwritten[d.entry_id] = d.delivery_count
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
        while not stopping.is_set() and not self.half_closed:
            free = self.credit - len(self.in_flight)
            if free <= 0:
                self.credit_returned.clear()
                await unless_stopped(self.credit_returned.wait(), stopping)
                continue
            # Client gone or shutting down: the read is no longer waited for, but never cancelled
            # (shield): it finishes by itself and what it took is released (see SUBSCRIBE_BLOCK_MS).
            reading = asyncio.ensure_future(
                self.bus.read(self.stream, self.group, self.consumer, count=free, block_ms=self.block_ms)
            )
            try:
                await unless_stopped(asyncio.shield(reading), stopping)
            except BaseException:
                self._keep(reading)
                raise
            if stopping.is_set():  # shutting down: nothing more is delivered, what the read took goes back
                self.bus.release_when_read(self.stream, self.group, self.consumer, reading)
                break
            for msg in self._batches(reading.result()):  # the read's error, if any, ends the call
                await self.out.put(msg)
        if self._shutdown_drained():
            await self.out.put(End(_shutting_down()))

    def _return_credit(self, ids: list[str]) -> None:
        before = len(self.in_flight)
        for i in ids:
            self.in_flight.pop(i, None)
        if len(self.in_flight) < before:
            self.credit_returned.set()

    def _release_pairs(self, r: pb.SubscribeRelease) -> tuple[list[tuple[str, int]], list[str]]:
        """(id, delivery count) pairs to give back, and the ids among them whose credit this call
        holds. Raises InvalidArgument (nothing is released then)."""
        ids, counts = list(r.ids), list(r.delivery_counts)
        if not 1 <= len(ids) <= MAX_ACK_IDS:
            raise InvalidArgument(f"ids must hold 1 to {MAX_ACK_IDS} entry ids (got {len(ids)})", field="ids")
        if counts and len(counts) != len(ids):
            raise InvalidArgument(
                f"give one delivery_count per id, or none (got {len(ids)} ids, {len(counts)} counts)", field="delivery_counts"
            )
        for i in ids:
            check_entry_id(i, "ids")
        if any(c < 1 for c in counts):
            raise InvalidArgument("each delivery_count is the count the delivery was received with, 1 or more", field="delivery_counts")
        pairs: list[tuple[str, int]] = []
        ours: list[str] = []
        for n, eid in enumerate(ids):
            if eid in self.unwritten:
                continue  # not written yet: the client cannot be giving it back
            held = self.in_flight.get(eid)
            if counts:
                if held is not None and held != counts[n]:
                    continue  # stale: this call holds a later delivery of the entry
                pairs.append((eid, counts[n]))
            elif held is not None:
                pairs.append((eid, held))
            else:
                continue  # not a delivery of this call, and no count to check it with
            if held is not None:
                ours.append(eid)
        return pairs, ours

    async def _reader(self) -> None:
        async for msg in self.requests:
            while len(self.inbox) >= self.inbox_max:
                self.inbox_space.clear()
                await self.inbox_space.wait()
            self.inbox.append(msg)
            self.inbox_ready.set()
        self.half_closed = True  # no delivery is written from now on
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
                # The client half-closed: end the call. What was written to it and not settled
                # or released stays pending; what was not written is released (release_unwritten).
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
                    self._return_credit(ids)
                    for a in acks:
                        await self.out.put(pb.SubscribeResponse(ack_result=pb.SubscribeAckResult(ref=a.ref)))
            elif kind == "nack":
                n = msg.nack
                try:
                    result = await self.bus.nack(self.stream, self.group, n.id, n.reason)
                except FridayError as exc:
                    if isinstance(exc, NotFound) and exc.field == "id":
                        self._return_credit([n.id])  # no longer pending: it holds no credit any more
                    await self.out.put(pb.SubscribeResponse(nack_result=pb.SubscribeNackResult(ref=n.ref, error=convert.error(exc))))
                else:
                    self._return_credit([n.id])
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
            elif kind == "release":
                r = msg.release
                try:
                    pairs, ours = self._release_pairs(r)
                    released = await self.bus.release(self.stream, self.group, self.consumer, pairs) if pairs else 0
                except FridayError as exc:
                    await self.out.put(pb.SubscribeResponse(release_result=pb.SubscribeReleaseResult(ref=r.ref, error=convert.error(exc))))
                else:
                    self._return_credit(ours)
                    await self.out.put(pb.SubscribeResponse(release_result=pb.SubscribeReleaseResult(ref=r.ref, released=released)))
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
