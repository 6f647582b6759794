"""The HTTP door: ``create_app(runtime)`` builds the FastAPI application over a started Runtime.

Routes validate and convert, then delegate to the runtime's EventBus; errors are mapped by the
one set of handlers in :mod:`.errors`; auth and the body-size limit are ASGI middlewares in
front of everything (:mod:`.security`), then strict JSON bodies (:mod:`.body`: Content-Type
application/json in UTF-8, no repeated keys).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ..auth import ApiKeys
from ..metrics import PrometheusObserver
from .body import JsonBodyMiddleware
from .errors import install_error_handlers
from .lifecycle import Lifecycle
from .routes import ROUTERS
from .security import ROLES_KEY, AuthMiddleware, BodyLimitMiddleware

API_VERSION = "1.0.0"
MIN_BODY_LIMIT = 16 * 1024 * 1024
DESCRIPTION = """Friday Event Bus sidecar: Redis Streams with consumer groups (critical events, at-least-once)
and Pub/Sub channels (informational events, at-most-once).

Auth: `Authorization: Bearer <key>` on every route except exactly `GET /healthz` and `GET /readyz`
(when keys are configured in FRIDAY_API_KEYS). Each operation lists the roles it accepts in `x-friday-roles`.
Errors: `{"error": {"code", "message", "retriable", "field"}}`; validation errors are 400, never 422.
Bodies: `Content-Type: application/json` (UTF-8; `charset=utf-8` allowed, nothing else), else 415;
an object that repeats a key is refused (400).
"""
UNSUPPORTED_BODY = {
    "description": "The body was not sent as `Content-Type: application/json` in UTF-8 (another media type, "
    "charset or parameter, no Content-Type, or a UTF-16/32 body); nothing was written.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def _body_limit(runtime: Any) -> int:
    max_payload = int(getattr(runtime.settings, "max_payload_bytes", 0) or 0)
    return max(MIN_BODY_LIMIT, 2 * max_payload + 64 * 1024)


def create_app(runtime: Any, *, keys: ApiKeys | None = None, lifecycle: Lifecycle | None = None,
               max_body_bytes: int | None = None) -> FastAPI:
    """The FastAPI app over ``runtime`` (its ``bus`` may be None until started: routes answer 503)."""
    app = FastAPI(
        title="Friday Event Bus", version=API_VERSION, description=DESCRIPTION,
        openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.lifecycle = lifecycle or Lifecycle()
    observer = getattr(runtime, "observer", None)
    app.state.metrics = observer if isinstance(observer, PrometheusObserver) else PrometheusObserver()
    keys = keys if keys is not None else ApiKeys.from_settings(runtime.settings)
    app.state.keys_enabled = keys.enabled
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(JsonBodyMiddleware, routes_owner=app)  # inside the size limit: reads bounded bodies only
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes or _body_limit(runtime))
    app.add_middleware(AuthMiddleware, keys=keys, routes_owner=app)  # outermost: before any body is read

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearerAuth"] = {
            "type": "http", "scheme": "bearer", "description": "A key from FRIDAY_API_KEYS (when keys are configured).",
        }
        for component in ("HTTPValidationError", "ValidationError"):
            schema["components"].get("schemas", {}).pop(component, None)
        channels = sorted(getattr(getattr(runtime, "topology", None), "channels", ()) or ())
        for path, ops in schema.get("paths", {}).items():
            for op in ops.values():
                if not isinstance(op, dict):
                    continue
                for param in op.get("parameters", []):
                    if param.get("name") == "stream" and channels:  # these routes take a stream, never a channel
                        param.setdefault("schema", {})["not"] = {"enum": channels}
                        param["description"] = (param.get("description") or "") + " Not a channel of the topology."
                responses = op.get("responses", {})
                responses.pop("422", None)  # validation errors are 400 (ErrorBody)
                if "requestBody" in op:  # refused by JsonBodyMiddleware
                    responses = op["responses"] = {
                        **{c: r for c, r in responses.items() if c < "415"}, "415": UNSUPPORTED_BODY,
                        **{c: r for c, r in responses.items() if c > "415"},
                    }
                for code, response in responses.items():
                    content = response.get("content") or {}
                    if code[0] in "45" and "application/json" not in content and content:
                        # error bodies are JSON even where success is not (SSE, Prometheus text)
                        response["content"] = {"application/json": next(iter(content.values()))}
                exempt = path in ("/healthz", "/readyz")
                op["security"] = [] if exempt else [{"bearerAuth": []}]
                roles = op.get(ROLES_KEY)
                if roles and not exempt:
                    op["description"] = (op.get("description") or "") + f"\n\nRoles: {', '.join(roles)}."
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
