"""Auth and body-size limit, as pure ASGI middlewares in front of every route.

Auth runs on the raw request before routing, so no route can forget it: only the exact
raw paths ``/healthz`` and ``/readyz`` with method ``GET`` and no query string are exempt.
``/healthz?x=``, ``//healthz``, ``/%68ealthz`` or ``HEAD /healthz`` need a key like everything
else, and so do unknown paths (401 before 404, so paths are not probed without a key).

The roles a route accepts are declared on the route (``**requires("publish")``, stored in its
OpenAPI extension ``x-friday-roles``); an API route that declares none needs ``admin``
(fail closed). Non-API routes (``/openapi.json``, ``/docs``) accept any valid key.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import ROLES, ApiKeys, bearer_token
from ..core.errors import InvalidArgument
from .errors import error_response

log = logging.getLogger("friday.http.auth")

EXEMPT_RAW_PATHS = frozenset({b"/healthz", b"/readyz"})
ROLES_KEY = "x-friday-roles"
ANY_ROLE: tuple[str, ...] = ROLES


def requires(*roles: str) -> dict[str, Any]:
    """Route keyword arguments declaring which roles may call it (any of them)."""
    bad = set(roles) - set(ROLES)
    if not roles or bad:
        raise ValueError(f"roles must be among {ROLES}")
    return {"openapi_extra": {ROLES_KEY: list(roles)}}


def route_roles(route: Any) -> tuple[str, ...]:
    if isinstance(route, APIRoute):
        roles = (route.openapi_extra or {}).get(ROLES_KEY)
        return tuple(roles) if roles else ("admin",)
    return ANY_ROLE


def iter_routes(routes: Any) -> Any:
    """Every leaf route of an app or router (FastAPI versions that keep included routers as one
    route expose the original router as ``original_router``)."""
    for route in routes:
        sub = getattr(route, "original_router", None)
        if sub is not None:
            yield from iter_routes(sub.routes)
        else:
            yield route


def route_table(app: Any) -> list[tuple[str, frozenset[str], tuple[str, ...]]]:
    """(path, methods, roles) of every route of ``app``: what auth enforces, for tests and docs."""
    return [
        (r.path, frozenset(getattr(r, "methods", None) or ()), route_roles(r))
        for r in iter_routes(app.router.routes)
        if hasattr(r, "path")
    ]


def is_exempt(scope: Scope) -> bool:
    return (
        scope.get("method") == "GET"
        and scope.get("raw_path") in EXEMPT_RAW_PATHS
        and not scope.get("query_string")
    )


class AuthMiddleware:
    def __init__(self, app: ASGIApp, keys: ApiKeys, routes_owner: Any) -> None:
        self.app = app
        self.keys = keys
        self.routes_owner = routes_owner  # the FastAPI app, whose router lists the routes
        self._routes: list[Any] | None = None

    def _roles_for(self, scope: Scope) -> tuple[str, ...]:
        if self._routes is None:
            self._routes = list(iter_routes(self.routes_owner.router.routes))
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route_roles(route)
        return ANY_ROLE  # unknown path or method: any valid key, then 404/405

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.keys.enabled or is_exempt(scope):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        roles = self._roles_for(scope)
        verdict = self.keys.check_any(bearer_token(header), roles)
        if verdict == "ok":
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        method, path = scope.get("method", "?"), scope.get("path", "?")
        if verdict == "unauthenticated":
            message = (
                "missing API key: send the header `Authorization: Bearer <key>`" if header is None
                else "API key not accepted: send `Authorization: Bearer <key>` with a key listed in FRIDAY_API_KEYS"
            )
            response = error_response(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})
        else:
            response = error_response(
                403, "permission_denied",
                f"this API key lacks the role needed for {method} {path}: one of {', '.join(roles)}",
            )
        log.info("refused %s %s: %s", method, path, verdict)  # never the key
        await response(scope, receive, send)


class BodyTooLarge(InvalidArgument):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` (400), whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> BodyTooLarge:
        return BodyTooLarge(
            f"request body is over {self.max_bytes} bytes; publish smaller events or split the batch", field="body"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    err = self._error()
                    await error_response(400, err.kind.value, err.message, field=err.field)(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, limited, send)
