"""Publish routes (role ``publish``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ...core.bus import EventBus
from ...core.limits import MAX_BATCH
from ...core.models import PublishRequest
from ..schemas import BatchBody, BatchOut, PublishBody, PublishOut, publish_out
from ..security import requires
from .common import errors, get_bus

router = APIRouter(prefix="/api/v1/events", tags=["publish"])
Bus = Annotated[EventBus, Depends(get_bus)]


def _request(body: PublishBody) -> PublishRequest:
    return PublishRequest(
        target=body.stream, payload=body.payload, event_id=body.idempotency_key,
        source=body.source, correlation_id=body.correlation_id,
    )


@router.post(
    "/publish", response_model=PublishOut, responses=errors(404, 429), **requires("publish"),
    summary="Publish one event to a stream or a channel",
    description="The topology decides: a critical stream (Redis Streams, durable once this returns) or an "
    "informational channel (Pub/Sub, reaches only current subscribers).",
)
async def publish(body: PublishBody, bus: Bus) -> PublishOut:
    return publish_out(await bus.publish(_request(body)))


@router.post(
    "/publish/batch", response_model=BatchOut, responses=errors(404, 429), **requires("publish"),
    summary=f"Publish 1-{MAX_BATCH} events in order",
    description="Every event is validated before any is written: one invalid event rejects the whole batch (400) "
    "and nothing is written. Results keep the order of the events.",
)
async def publish_batch(body: BatchBody, bus: Bus) -> BatchOut:
    results = await bus.publish_batch([_request(e) for e in body.events])
    return BatchOut(results=[publish_out(r) for r in results])
