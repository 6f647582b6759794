"""Shared route helpers: the bus and lifecycle dependencies, path parameters, documented error responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request

from ...core.bus import EventBus
from ...core.errors import Unavailable
from ..lifecycle import Lifecycle
from ..schemas import NAME_PATTERN, ErrorBody

StreamName = Annotated[str, Path(pattern=NAME_PATTERN, description="Stream name (1-200 of A-Z a-z 0-9 . _ -).",
                                 examples=["email.received"])]
GroupName = Annotated[str, Path(pattern=NAME_PATTERN, description="Consumer group name.", examples=["email-processor"])]
ChannelName = Annotated[str, Path(pattern=NAME_PATTERN, description="Informational channel name.", examples=["file.uploaded"])]

_DESCRIPTIONS = {
    400: "Invalid input: the message says what to fix; nothing was written.",
    401: "Missing or unknown API key.",
    403: "The API key lacks the role this route needs.",
    404: "Unknown stream, group, channel or entry.",
    405: "Method not allowed on this path.",
    409: "The state forbids it (e.g. the group still holds pending entries).",
    429: "The stream's backlog reached its hard cap; nothing was written. Retry later.",
    500: "Internal error (no details beyond the message; see the sidecar log).",
    503: "Redis is unreachable or the sidecar is starting or stopping. Retry later.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses (always 400/401/403/500/503 plus ``codes``)."""
    wanted = sorted({400, 401, 403, 500, 503, *codes})
    return {c: {"model": ErrorBody, "description": _DESCRIPTIONS[c]} for c in wanted}


def get_bus(request: Request) -> EventBus:
    runtime = request.app.state.runtime
    bus = getattr(runtime, "bus", None)
    if bus is None:
        raise Unavailable("the sidecar is not connected to Redis (starting or stopping); retry in a moment")
    return bus


def get_lifecycle(request: Request) -> Lifecycle:
    return request.app.state.lifecycle
