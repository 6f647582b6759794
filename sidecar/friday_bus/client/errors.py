"""Errors raised by the client: the core's classes, so ``except NotFound`` reads the same
whether an agent talks to the sidecar over gRPC or embeds the core, plus two for auth."""

from __future__ import annotations

import grpc

from ..core.errors import BacklogFull, Conflict, ErrorKind, FridayError, InvalidArgument, NotFound, Unavailable
from ._status import MD_FIELD, MD_KIND, STATUS_BY_KIND, status_code


class Unauthenticated(FridayError):
    """Missing or unknown API key (gRPC UNAUTHENTICATED). Not retriable: fix the key."""

    kind = ErrorKind.INVALID


class PermissionDenied(FridayError):
    """The API key lacks the role the call needs (gRPC PERMISSION_DENIED). Not retriable."""

    kind = ErrorKind.INVALID


_BY_KIND: dict[str, type[FridayError]] = {
    ErrorKind.INVALID.value: InvalidArgument,
    ErrorKind.NOT_FOUND.value: NotFound,
    ErrorKind.CONFLICT.value: Conflict,
    ErrorKind.BACKLOG_FULL.value: BacklogFull,
    ErrorKind.UNAVAILABLE.value: Unavailable,
    ErrorKind.INTERNAL.value: FridayError,
}

# A failed call without the sidecar's classification (a proxy, gRPC itself): the class by code.
# The sidecar's own codes read back as their kind's class, plus what only gRPC says.
_BY_CODE: dict[grpc.StatusCode, type[FridayError]] = {
    **{code: _BY_KIND[kind.value] for kind, code in STATUS_BY_KIND.items()},
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    # Without the sidecar's classification this is gRPC's own limit (message too large).
    grpc.StatusCode.RESOURCE_EXHAUSTED: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def from_rpc_error(exc: grpc.aio.AioRpcError) -> FridayError:
    """The typed error for a failed call; ``.grpc_code`` keeps the status code."""
    md = {}
    for item in exc.trailing_metadata() or ():
        md[item[0]] = item[1]
    kind = md.get(MD_KIND)
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None or exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        cls = _BY_CODE.get(exc.code(), FridayError)
    field = md.get(MD_FIELD)
    err = cls(exc.details() or exc.code().name, field=field if isinstance(field, str) else None)
    err.grpc_code = exc.code()  # type: ignore[attr-defined]
    return err


def from_error_message(kind: str, message: str, field: str = "") -> FridayError:
    """The typed error for an ``Error`` carried inside a stream message (Subscribe, PublishStream);
    ``.grpc_code`` is the code the sidecar gives that kind when it fails a whole call."""
    err = _BY_KIND.get(kind, FridayError)(message, field=field or None)
    err.grpc_code = status_code(kind)  # type: ignore[attr-defined]
    return err
