"""Consumer-group routes (role ``consume``): read (long poll), ack, extend, release, nack, and next (peek without a group)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ...core.bus import EventBus
from ...core.limits import MAX_ACK_IDS, MAX_BLOCK_MS
from ...core.models import Delivery
from ..lifecycle import ClientGone, Lifecycle, long_poll_read
from ..schemas import (
    AckBody,
    AckOut,
    ExtendBody,
    ExtendOut,
    NackBody,
    NackOut,
    NextOut,
    ReadBody,
    ReadOut,
    ReleaseBody,
    ReleaseOut,
    delivery_out,
    nack_out,
    next_out,
)
from ..security import requires
from .common import GroupName, StreamName, errors, get_bus, get_lifecycle

router = APIRouter(prefix="/api/v1/streams", tags=["consume"])
Bus = Annotated[EventBus, Depends(get_bus)]
Life = Annotated[Lifecycle, Depends(get_lifecycle)]


@router.post(
    "/{stream}/groups/{group}/read", response_model=ReadOut, responses=errors(404), **requires("consume"),
    summary="Read deliveries as a consumer of a group (long poll)",
    description="Returns as soon as at least one delivery is available, or an empty list after block_ms. "
    "Deliveries include entries reclaimed from crashed consumers and nacked entries whose backoff elapsed. "
    "Each delivery stays pending until acked or nacked (or released). If the client disconnects before the "
    "answer is sent, whatever the read already took is released: redelivered at once with its delivery count "
    "as it was (nothing is acked on its behalf).",
)
async def read(stream: StreamName, group: GroupName, body: ReadBody, request: Request, bus: Bus, life: Life) -> ReadOut:
    async def give_back(deliveries: list[Delivery]) -> None:
        if deliveries:
            await bus.release(stream, group, body.consumer, deliveries)

    try:
        deliveries = await life.interruptible(
            request, long_poll_read(bus, stream, group, body.consumer, body.count, body.block_ms), abandoned=give_back
        )
    except ClientGone:
        return ReadOut(deliveries=[])  # nobody is listening; what the read took was released
    return ReadOut(deliveries=[delivery_out(d) for d in deliveries])


@router.post(
    "/{stream}/groups/{group}/ack", response_model=AckOut, responses=errors(404), **requires("consume"),
    summary="Acknowledge deliveries",
    description=f"Up to {MAX_ACK_IDS} ids per call. Acking an id that is not pending counts 0 and is not an error.",
)
async def ack(stream: StreamName, group: GroupName, body: AckBody, bus: Bus) -> AckOut:
    return AckOut(acked=await bus.ack(stream, group, body.ids))


@router.post(
    "/{stream}/groups/{group}/extend", response_model=ExtendOut, responses=errors(404), **requires("consume"),
    summary="Keep deliveries in progress (restart their claim idle time)",
    description="For work that lasts longer than the stream's claim_idle_ms: call it well within that time "
    "(e.g. every third of it) so the deliveries are not reclaimed by another consumer. Only ids still pending "
    "for this consumer are extended; the delivery count is unchanged.",
)
async def extend(stream: StreamName, group: GroupName, body: ExtendBody, bus: Bus) -> ExtendOut:
    return ExtendOut(extended=await bus.extend(stream, group, body.consumer, body.ids))


@router.post(
    "/{stream}/groups/{group}/release", response_model=ReleaseOut, responses=errors(404), **requires("consume"),
    summary="Give back deliveries never handed to a handler (redelivered at once, uncounted)",
    description=f"Up to {MAX_ACK_IDS} deliveries, each with the delivery_count it was read with. Each entry still pending "
    "for this consumer with that count is redelivered at once, to any consumer of the group, with the same "
    "delivery_count: it does not count toward max_deliveries. Entries acked, reclaimed by another consumer, "
    "delivered again since or nacked are skipped (they count 0, not an error), so a late or repeated release is "
    "harmless. Nothing is acked. Release only what no handler saw: a delivery that was being handled and is "
    "never settled is reclaimed after the claim time with its count raised, as for a crash.",
)
async def release(stream: StreamName, group: GroupName, body: ReleaseBody, bus: Bus) -> ReleaseOut:
    deliveries = [(d.id, d.delivery_count) for d in body.deliveries]
    return ReleaseOut(released=await bus.release(stream, group, body.consumer, deliveries))


@router.post(
    "/{stream}/groups/{group}/nack", response_model=NackOut, responses=errors(404), **requires("consume"),
    summary="Reject a delivery: retry after the backoff, or dead-letter it",
    description="The entry is redelivered after the stream's backoff, or moved to the dead-letter stream with the "
    "reason once it has been delivered max_deliveries times. 404 if the entry is not pending in the group.",
)
async def nack(stream: StreamName, group: GroupName, body: NackBody, bus: Bus) -> NackOut:
    return nack_out(await bus.nack(stream, group, body.id, body.reason))


@router.get(
    "/{stream}/next", response_model=NextOut, responses=errors(404), **requires("consume"),
    summary="Wait for the next event published to a stream, without any consumer group",
    description="Nothing becomes pending and nothing is acked (n8n's 'Listen for test event'). "
    "event is null when nothing was published within block_ms.",
)
async def next_event(
    stream: StreamName, request: Request, bus: Bus, life: Life,
    block_ms: Annotated[int, Query(ge=0, le=MAX_BLOCK_MS,
                                   description=f"Wait up to this long (0 to {MAX_BLOCK_MS} ms; 0: don't wait).")] = 0,
) -> NextOut:
    try:
        event = await life.interruptible(request, bus.peek_next(stream, block_ms))
    except ClientGone:
        return NextOut(event=None)
    return next_out(event)
