"""Probes and metrics. ``GET /healthz`` and ``GET /readyz`` (exact paths) need no key; ``/metrics`` needs ``admin``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ...auth import ROLES
from ...core.errors import Unavailable
from ...metrics import CONTENT_TYPE
from ..schemas import HealthOut, ReadyOut
from ..security import requires
from .common import errors

router = APIRouter(tags=["probes"])


@router.get("/healthz", response_model=HealthOut, **requires(*ROLES), summary="Liveness: 200 while the process serves")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz", response_model=ReadyOut, responses={503: errors()[503]}, **requires(*ROLES),
    summary="Readiness: 200 when Redis answers and setup is done, else 503",
)
async def readyz(request: Request) -> ReadyOut:
    if request.app.state.lifecycle.is_stopping:  # the door's own state; the rest is the runtime's one decision
        raise Unavailable("the sidecar is shutting down")
    ready = await request.app.state.runtime.check_ready()
    return ReadyOut(status="ready", redis_version=ready.redis_version, mode=ready.mode, masters=list(ready.masters))


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
