"""Publish routes (role ``publish``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ...core.bus import EventBus
from ...core.limits import MAX_BATCH
from ...core.models import PublishRequest
from ..schemas import BatchBody, BatchOut, PublishBody, PublishOut, publish_out
from ..security import requires
from .common import errors, get_bus

router = APIRouter(prefix="/api/v1/events", tags=["publish"])
Bus = Annotated[EventBus, Depends(get_bus)]
# The W3C trace-context headers are read from the request, not declared as parameters: the core
# checks them (codec.validate_trace_context) and says what to fix; a tracestate alone is ignored.
TRACE_HEADERS_DOC = (
    " Optional headers `traceparent` / `tracestate` (W3C trace context) are stored with the event(s) and handed to "
    "every consumer in `metadata.traceparent` / `metadata.tracestate` (on a batch: every event); malformed: 400, "
    "field `traceparent` or `tracestate`, nothing written."
)


def trace_headers(request: Request) -> tuple[str | None, str | None]:
    headers = request.headers
    return headers.get("traceparent"), headers.get("tracestate")


def _request(body: PublishBody, traceparent: str | None = None, tracestate: str | None = None) -> PublishRequest:
    return PublishRequest(
        target=body.stream, payload=body.payload, event_id=body.idempotency_key,
        source=body.source, correlation_id=body.correlation_id, traceparent=traceparent, tracestate=tracestate,
    )


@router.post(
    "/publish", response_model=PublishOut, responses=errors(404, 429), **requires("publish"),
    summary="Publish one event to a stream or a channel",
    description="The topology decides: a critical stream (Redis Streams, durable once this returns) or an "
    "informational channel (Pub/Sub, reaches only current subscribers)." + TRACE_HEADERS_DOC,
)
async def publish(body: PublishBody, bus: Bus, request: Request) -> PublishOut:
    return publish_out(await bus.publish(_request(body, *trace_headers(request))))


@router.post(
    "/publish/batch", response_model=BatchOut, responses=errors(404, 429), **requires("publish"),
    summary=f"Publish 1-{MAX_BATCH} events in order",
    description="Every event is validated before any is written: one invalid event rejects the whole batch (400) "
    "and nothing is written. Results keep the order of the events." + TRACE_HEADERS_DOC,
)
async def publish_batch(body: BatchBody, bus: Bus, request: Request) -> BatchOut:
    traceparent, tracestate = trace_headers(request)
    results = await bus.publish_batch([_request(e, traceparent, tracestate) for e in body.events])
    return BatchOut(results=[publish_out(r) for r in results])
