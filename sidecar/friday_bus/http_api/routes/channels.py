"""Informational channels: Server-Sent Events subscription (role ``consume``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ...core.bus import EventBus
from ..lifecycle import SSE_KEEPALIVE_S, Lifecycle, SSEResponse
from ..security import requires
from .common import ChannelName, errors, get_bus, get_lifecycle

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])

SSE_EXAMPLE = (
    ": keepalive\n\n"
    "event: message\n"
    'data: {"channel":"file.uploaded","payload":{"path":"/inbox/a.pdf"},"metadata":{"event_id":null,"source":null,'
    '"correlation_id":null,"published_at":"2024-05-29T16:26:40.000Z","published_at_ms":1717000000000,"encoding":"friday"}}\n\n'
)


@router.get(
    "/{channel}/subscribe", response_class=SSEResponse, status_code=200, **requires("consume"),
    summary="Subscribe to an informational channel (text/event-stream)",
    description="Each message is `event: message` with `data:` a JSON object {channel, payload, metadata}. "
    f"A comment `: keepalive` is sent at once and then every {SSE_KEEPALIVE_S:.0f} s. If the Redis subscription "
    "fails, an `event: error` with the usual error body is sent and the stream ends. Pub/Sub is at-most-once: "
    "messages published while nobody listens are not kept.",
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}, "example": SSE_EXAMPLE}},
                     "description": "The event stream."}, **errors(404)},
)
async def subscribe(
    channel: ChannelName, request: Request,
    bus: Annotated[EventBus, Depends(get_bus)], life: Annotated[Lifecycle, Depends(get_lifecycle)],
) -> SSEResponse:
    bus.check_channel(channel)  # before the 200 starts (the core checks again when it subscribes)
    if life.is_stopping:
        raise life.shutting_down_error()
    return SSEResponse(bus.subscribe([channel]), life)
