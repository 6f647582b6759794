"""The one place where errors become HTTP responses.

Every error body is ``{"error": {"code", "message", "retriable", "field"}}`` (plus ``details``
when the core gave some). The core classifies (:class:`~friday_bus.core.errors.ErrorKind`);
this module only maps the kind to a status. Request validation errors become 400 with a
message naming the field and what to fix; nothing here ever returns a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.errors import ErrorKind, FridayError
from .schemas import PATTERN_HELP

log = logging.getLogger("friday.http")

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.BACKLOG_FULL: 429,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.INTERNAL: 500,
}
RETRY_AFTER_S = "1"
_SHOW_MAX = 60


def error_body(code: str, message: str, *, retriable: bool = False, field: str | None = None,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "retriable": retriable, "field": field}
    if details:
        err["details"] = details
    return {"error": err}


def error_response(status: int, code: str, message: str, *, retriable: bool = False, field: str | None = None,
                   details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, retriable=retriable, field=field, details=details), status, headers=headers)


def friday_error_response(exc: FridayError) -> JSONResponse:
    status = STATUS_BY_KIND.get(exc.kind, 500)
    headers = {"Retry-After": RETRY_AFTER_S} if exc.retriable else None
    return error_response(status, exc.kind.value, exc.message, retriable=exc.retriable, field=exc.field,
                          details=exc.details or None, headers=headers)


# ---------------------------------------------------------------- validation messages
def _field(loc: Sequence[Any]) -> str:
    parts = list(loc[1:]) if loc and loc[0] in ("body", "path", "query", "header", "cookie") else list(loc)
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or (str(loc[0]) if loc else "request")


def _shown(value: Any) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return repr(value) if value is not None else "null"
    if isinstance(value, str):
        text = value if len(value) <= _SHOW_MAX else value[:_SHOW_MAX] + "..."
        return repr(text)
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_TYPE_WORDS = {
    "dict_type": "a JSON object",
    "model_type": "a JSON object",
    "model_attributes_type": "a JSON object",
    "list_type": "a JSON array",
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def validation_message(err: dict[str, Any]) -> tuple[str, str]:
    """(field, message) for one pydantic error, phrased as what to fix."""
    loc = err.get("loc") or ()
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    value = err.get("input")
    field = _field(loc)
    if kind == "json_invalid":
        return "body", f"request body is not valid JSON ({ctx.get('error', 'parse error')}); send a JSON object"
    if loc and loc[0] == "body" and len(loc) == 1:
        if kind == "missing":
            return "body", "request body is required: send a JSON object (Content-Type: application/json)"
        if isinstance(value, (bytes, bytearray)):
            return "body", "request body must be JSON: send a JSON object with Content-Type: application/json"
        return "body", f"request body must be a JSON object (got {_json_type(value)}); send Content-Type: application/json"
    if kind == "missing":
        return field, f"{field} is required"
    if kind == "extra_forbidden":
        return field, f"{field} is not a known field: remove it or check its spelling (see /docs)"
    if kind == "string_pattern_mismatch":
        help_ = PATTERN_HELP.get(str(ctx.get("pattern")), f"it must match {ctx.get('pattern')}")
        shown = _shown(value)
        return field, f"invalid {field}{' ' + shown if shown else ''}: {help_}"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind in _TYPE_WORDS:
        return field, f"{field} must be {_TYPE_WORDS[kind]} (got {_json_type(value)})"
    if kind.endswith(("_type", "_parsing")):
        return field, f"{field}: {msg} (got {_json_type(value)})"
    shown = _shown(value)
    return field, f"{field}: {msg}" + (f" (got {shown})" if shown is not None else "")


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if not errors:
        return error_response(400, "invalid_argument", "the request is invalid", field=None)
    parts = [validation_message(e) for e in errors[:5]]
    message = "; ".join(m for _, m in parts)
    if len(errors) > 5:
        message += f"; and {len(errors) - 5} more"
    return error_response(400, ErrorKind.INVALID.value, message, field=parts[0][0])


async def _friday_handler(request: Request, exc: FridayError) -> JSONResponse:
    if exc.kind is ErrorKind.INTERNAL:
        log.error("internal error on %s %s: %s", request.method, request.url.path, exc.message, exc_info=exc)
    return friday_error_response(exc)


async def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    cause = exc.__cause__
    if isinstance(cause, FridayError):  # raised while reading the body (e.g. the size limit)
        return friday_error_response(cause)
    headers = dict(exc.headers or {})
    status = exc.status_code
    if status == 404:
        return error_response(404, "not_found", f"no route {request.method} {request.url.path}; the API is described at /docs",
                              headers=headers)
    if status == 405:
        allowed = headers.get("Allow") or headers.get("allow") or ""
        return error_response(405, "invalid_argument",
                              f"method {request.method} is not allowed on {request.url.path}" + (f"; use {allowed}" if allowed else ""),
                              headers=headers)
    if status == 400:
        message = str(exc.detail)
        if message == "There was an error parsing the body":
            message = "request body could not be parsed: send a JSON object (Content-Type: application/json)"
        return error_response(400, "invalid_argument", message, field="body", headers=headers)
    code = {401: "unauthenticated", 403: "permission_denied", 409: "conflict", 429: "backlog_full", 503: "unavailable"}.get(
        status, "invalid_argument" if 400 <= status < 500 else "internal"
    )
    return error_response(status, code, str(exc.detail), retriable=status in (429, 503), headers=headers)


async def _unhandled_handler(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", f"internal error ({type(exc).__name__}); see the sidecar log")


def install_error_handlers(app: FastAPI) -> None:
    """The one set of exception handlers of the HTTP door."""
    app.add_exception_handler(FridayError, _friday_handler)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unhandled_handler)
