"""Probes and metrics. ``GET /healthz`` and ``GET /readyz`` (exact paths) need no key; ``/metrics`` needs ``admin``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from ...auth import ROLES
from ...core.errors import Unavailable
from ...metrics import CONTENT_TYPE
from ..schemas import HealthOut, ReadyOut
from ..security import requires
from .common import errors

router = APIRouter(tags=["probes"])
PING_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=HealthOut, **requires(*ROLES), summary="Liveness: 200 while the process serves")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz", response_model=ReadyOut, responses={503: errors()[503]}, **requires(*ROLES),
    summary="Readiness: 200 when Redis answers and setup is done, else 503",
)
async def readyz(request: Request) -> ReadyOut:
    runtime = request.app.state.runtime
    if request.app.state.lifecycle.is_stopping:
        raise Unavailable("the sidecar is shutting down")
    bus = runtime.bus
    if bus is None or not runtime.ready:
        raise Unavailable("the sidecar is starting: Redis not connected or setup not done yet")
    try:
        await asyncio.wait_for(bus.ping(), PING_TIMEOUT_S)
        setup_done = await asyncio.wait_for(bus.is_setup(), PING_TIMEOUT_S)
    except TimeoutError:
        raise Unavailable(f"Redis did not answer within {PING_TIMEOUT_S:.0f} s") from None
    if not setup_done:
        raise Unavailable(
            "Redis answers but the topology setup is missing (Redis restarted empty?): restart the sidecar to run it again"
        )
    return ReadyOut(status="ready", redis_version=bus.redis_version)


@router.get(
    "/metrics", response_class=Response, **requires("admin"), responses={
        200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"},
              "example": "# TYPE friday_stream_length gauge\nfriday_stream_length{stream=\"email.received\"} 3.0\n"}},
              "description": "Prometheus text format."},
        **errors()},
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    body = await request.app.state.metrics.scrape(request.app.state.runtime)
    return Response(body, media_type=CONTENT_TYPE)
