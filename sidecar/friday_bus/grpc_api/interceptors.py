"""The two server interceptors of the gRPC door.

* :class:`AuthInterceptor` checks ``authorization: Bearer <key>`` against the role each
  method needs (:data:`METHOD_ROLES`). A method of the service missing from that table is
  refused, whatever the key: a new RPC cannot ship without a role. Health checking and
  server reflection need no key.
* :class:`ErrorInterceptor` is the ONE place where errors become status codes: each
  :class:`FridayError` kind (classified once, in the core) maps to a code (the table is
  :data:`friday_bus_client._status.STATUS_BY_KIND`, shared with the client), the message is
  the core's (it says what to fix) and trailing metadata carries the classification.
  Anything else is INTERNAL with a generic message; the traceback goes to the log only.
  It also wraps each method's request deserializer (:func:`checked_deserializer`): bytes
  that are not a valid request message (garbage, truncated, invalid UTF-8 in a string) are
  INVALID_ARGUMENT "the request is not a valid friday.eventbus.v1.<Type> message: ...",
  for a unary request as for any message of a request stream, with no traceback logged.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import grpc
from friday_bus_client._proto import eventbus_pb2 as pb
from friday_bus_client._status import MD_FIELD, MD_KIND, MD_RETRIABLE, status_code

from ..auth import ApiKeys, bearer_token
from ..core.errors import ErrorKind, FridayError, InvalidArgument

log = logging.getLogger("friday.grpc")

SERVICE = pb.DESCRIPTOR.services_by_name["EventBus"].full_name  # friday.eventbus.v1.EventBus
SERVICE_PREFIX = f"/{SERVICE}/"

ANY_ROLE = ("publish", "consume", "admin")

# The roles that may call each method (a key needs one of them). Same as the HTTP door.
METHOD_ROLES: dict[str, tuple[str, ...]] = {
    f"{SERVICE_PREFIX}{name}": roles
    for name, roles in {
        "Publish": ("publish",),
        "PublishBatch": ("publish",),
        "PublishStream": ("publish",),
        "PublishInfo": ("publish",),
        "Subscribe": ("consume",),
        "Ack": ("consume",),
        "Nack": ("consume",),
        "Extend": ("consume",),
        "Release": ("consume",),
        "SubscribeChannel": ("consume",),
        "Status": ("admin",),
        "CreateGroup": ("admin",),
        "Rewind": ("admin",),
        "DestroyGroup": ("admin",),
        "ListDeadLetters": ("admin",),
        "ReplayDeadLetters": ("admin",),
        "ListStreams": ANY_ROLE,
        "ListChannels": ANY_ROLE,
        "ListGroups": ANY_ROLE,
    }.items()
}

# Services anyone may call: probes and tooling (grpcurl, grpc_health_probe).
EXEMPT_PREFIXES: tuple[str, ...] = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


def _rebuild(handler: grpc.RpcMethodHandler, behavior: Callable[..., Any],
             request_deserializer: Callable[[bytes], Any] | None = None) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` running ``behavior`` (and ``request_deserializer``, if given)."""
    kw = {"request_deserializer": request_deserializer or handler.request_deserializer,
          "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(behavior, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(behavior, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(behavior, **kw)
    return grpc.unary_unary_rpc_method_handler(behavior, **kw)


class Malformed:
    """What :func:`checked_deserializer` hands over instead of a request it could not parse:
    the behaviour (or the request iterator) raises :attr:`error` in its place."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def request_type(method: str) -> str:
    """Full name of the request message of an EventBus method (``/pkg.Service/Name``)."""
    found = pb.DESCRIPTOR.services_by_name["EventBus"].methods_by_name.get(method.rsplit("/", 1)[-1])
    return found.input_type.full_name if found is not None else "request"


def checked_deserializer(deserializer: Callable[[bytes], Any] | None, type_name: str) -> Callable[[bytes], Any]:
    """``deserializer`` that returns a :class:`Malformed` (never raises) for bytes that are not a
    valid ``type_name``: gRPC would answer UNKNOWN "Unexpected <class DecodeError>" and log a traceback."""

    def deserialize(raw: bytes) -> Any:
        if deserializer is None:
            return raw
        try:
            return deserializer(raw)
        except Exception as exc:  # noqa: BLE001 - DecodeError (upb), or whatever a parser raises on bad bytes
            reason = str(exc).split("': ", 1)[-1] if str(exc).startswith("Error parsing message") else str(exc)
            return Malformed(InvalidArgument(
                f"the request is not a valid {type_name} message: {reason or type(exc).__name__}. Send it encoded "
                "by protobuf code generated from friday/eventbus/v1/eventbus.proto",
            ))

    return deserialize


async def _checked_requests(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The messages of a request stream; a malformed one raises its InvalidArgument."""
    async for m in requests:
        if isinstance(m, Malformed):
            raise m.error
        yield m


def _inner_behavior(handler: grpc.RpcMethodHandler) -> Callable[..., Any]:
    return handler.stream_stream or handler.stream_unary or handler.unary_stream or handler.unary_unary


def _refusal(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    if handler.response_streaming:

        async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(code, message)
            yield  # pragma: no cover - makes this an async generator

        return _rebuild(handler, refuse_stream)
    return _rebuild(handler, refuse)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, keys: ApiKeys, roles: Mapping[str, tuple[str, ...]] = METHOD_ROLES) -> None:
        self.keys = keys
        self.roles = roles

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        method = details.method
        if method.startswith(EXEMPT_PREFIXES):
            return await continuation(details)
        roles = self.roles.get(method)
        if roles is not None and not self.keys.enabled:
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return None  # unknown method: gRPC answers UNIMPLEMENTED
        if roles is None:
            log.error("gRPC method %s has no role in METHOD_ROLES: refused", method)
            return _refusal(handler, grpc.StatusCode.PERMISSION_DENIED, f"{method} has no access role configured; it is refused")
        key = None
        for md in details.invocation_metadata or ():
            if md[0] == "authorization":
                key = bearer_token(md[1] if isinstance(md[1], str) else md[1].decode("latin-1"))
                break
        verdict = self.keys.check_any(key, roles)
        if verdict == "ok":
            return handler
        short = method.rsplit("/", 1)[-1]
        if verdict == "unauthenticated":
            return _refusal(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or unknown API key: send metadata `authorization: Bearer <key>` with a key from FRIDAY_API_KEYS",
            )
        return _refusal(
            handler,
            grpc.StatusCode.PERMISSION_DENIED,
            f"this API key lacks the {' or '.join(roles)} role that {short} needs; use a key listed as "
            f"key:{roles[0]} (or with no roles) in FRIDAY_API_KEYS",
        )


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, method: str) -> None:
    if isinstance(exc, FridayError):
        md: tuple[tuple[str, str], ...] = ((MD_KIND, exc.kind.value), (MD_RETRIABLE, "true" if exc.retriable else "false"))
        if exc.field:
            md += ((MD_FIELD, exc.field),)
        await context.abort(status_code(exc.kind), exc.message, trailing_metadata=md)
    log.error("unexpected error in %s", method, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL,
        "internal error in the sidecar; it has been logged",
        trailing_metadata=((MD_KIND, ErrorKind.INTERNAL.value), (MD_RETRIABLE, "false")),
    )


def _passes(exc: BaseException) -> bool:
    """Exceptions that are not errors of the call: aborts already decided, cancellation."""
    return isinstance(exc, grpc.aio.AbortError) or not isinstance(exc, Exception)


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps core errors to status codes, for every method of the EventBus service."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation: Continuation, details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(SERVICE_PREFIX):
            return handler
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, details.method)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        inner = _inner_behavior(handler)
        deserializer = checked_deserializer(handler.request_deserializer, request_type(method))
        streaming = handler.request_streaming

        def checked(request: Any) -> Any:
            if streaming:
                return _checked_requests(request)
            if isinstance(request, Malformed):
                raise request.error
            return request

        if inspect.isasyncgenfunction(inner):

            async def stream_behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    async for item in inner(checked(request), context):
                        yield item
                except BaseException as exc:
                    if _passes(exc):
                        raise
                    await _abort(context, exc, method)

            return _rebuild(handler, stream_behavior, deserializer)

        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await inner(checked(request), context)
            except BaseException as exc:
                if _passes(exc):
                    raise
                await _abort(context, exc, method)

        return _rebuild(handler, behavior, deserializer)
