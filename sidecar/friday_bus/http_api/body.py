"""Request bodies are strict JSON: checked once, as a pure ASGI middleware, in front of every route
that takes a body (docs/http-api.md, Errors).

* The body must be sent as ``Content-Type: application/json``, in UTF-8. The one parameter allowed
  is ``charset=utf-8`` (any case, quoted or not); application/json defines no other, so any other
  parameter, another charset, another media type (``application/merge-patch+json``, ``text/plain``,
  a form...), several Content-Type headers, none at all, or a body in UTF-16/UTF-32 is refused with
  415 and a message saying what to send.
* An object that repeats a key, at any depth (``{"stream": "x", "stream": "y"}``), is refused with
  400 naming the key and where it is: :func:`friday_bus.core.codec.loads_json`, the gRPC door's
  parser too.

Requests without a body, and bodies sent to routes that take none, are left alone. Anything else
wrong with the body (not JSON, too deep, a route's own validation) is left to FastAPI, which parses
it again with ``json.loads``: for a body that passed here that gives the same values, so the routes
see exactly what they saw before. Nothing is written when a body is refused here: no route runs.
"""

from __future__ import annotations

import json

from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.codec import loads_json
from ..core.errors import FridayError
from .errors import error_response, friday_error_response
from .security import iter_routes

MEDIA_TYPE = "application/json"
SEND_JSON = "send it as UTF-8 JSON with Content-Type: application/json (charset=utf-8 may be added, nothing else)"
_UTF8 = ("utf-8", "utf-8-sig")  # json.detect_encoding's names; a UTF-8 BOM is tolerated, as json.loads does
_SHOWN = 100


def _allowed_parameter(param: str) -> bool:
    """``charset=utf-8`` (any case, quoted or not), or nothing (a trailing ``;``)."""
    name, _, value = param.partition("=")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return not param.strip() or (name.strip().lower() == "charset" and value.lower() == "utf-8")


def content_type_problem(values: list[bytes]) -> str | None:
    """None when the Content-Type header(s) say application/json in UTF-8, else what is wrong."""
    if len(values) > 1:
        return f"the request has {len(values)} Content-Type headers"
    raw = values[0].decode("latin-1").strip() if values else ""
    if not raw:
        return "the request has a body but no Content-Type"
    media, *params = raw.split(";")
    if media.strip().lower() == MEDIA_TYPE and all(_allowed_parameter(p) for p in params):
        return None
    shown = raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "..."
    return f"unsupported Content-Type {json.dumps(shown)}"


class JsonBodyMiddleware:
    """Refuse a body that is not strict JSON (see the module doc) before any route runs."""

    def __init__(self, app: ASGIApp, routes_owner: object) -> None:
        self.app = app
        self.routes_owner = routes_owner  # the FastAPI app, whose router lists the routes
        self._routes: list[object] | None = None

    def _takes_body(self, scope: Scope) -> bool:
        if self._routes is None:
            self._routes = list(iter_routes(self.routes_owner.router.routes))  # type: ignore[attr-defined]
        for route in self._routes:
            match, _ = route.matches(scope)  # type: ignore[attr-defined]
            if match is Match.FULL:
                return isinstance(route, APIRoute) and route.body_field is not None
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._takes_body(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        messages: list[Message] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break  # the client left: let the route see it, as it would have
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except FridayError as exc:  # the body-size limit, while streaming
            await friday_error_response(exc)(scope, receive, send)
            return
        body = b"".join(chunks)
        if body and messages[-1]["type"] == "http.request":
            refusal = self._refusal(scope, body)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    def _refusal(scope: Scope, body: bytes) -> Response | None:
        problem = content_type_problem([v for k, v in scope.get("headers") or () if k == b"content-type"])
        encoding = json.detect_encoding(body)
        if problem is None and encoding not in _UTF8:
            problem = f"the request body is {encoding.upper()}, not UTF-8"
        if problem is not None:
            return error_response(415, "invalid_argument", f"{problem}: {SEND_JSON}", field="content-type")
        try:
            text = body.decode(encoding, "surrogatepass")  # as json.loads decodes bytes
            loads_json(text)
        except FridayError as exc:  # a repeated key
            return friday_error_response(exc)
        except (ValueError, RecursionError):
            return None  # not JSON: FastAPI says so, as before
        return None
