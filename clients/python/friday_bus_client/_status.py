"""ErrorKind -> gRPC status code: the one table (and the metadata keys of a failed call).

The sidecar's error interceptor fails a call with the code of its error's kind; the client
reads it back (:func:`from_rpc_error`, a failed call) and gives an error carried inside a
stream message (Subscribe, PublishStream) the code the sidecar would have failed a whole call
with (:func:`from_error_message`). Both import this module, which imports grpc and
:mod:`.errors` only: not the client's calls, not the server, not Redis code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import grpc

from .errors import (
    BacklogFull,
    Conflict,
    ErrorKind,
    FridayError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

STATUS_BY_KIND: Mapping[ErrorKind, grpc.StatusCode] = MappingProxyType({
    ErrorKind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.CONFLICT: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.BACKLOG_FULL: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
})

# The codes a client retries (unary calls, a bounded number of times) or reconnects on
# (subscriptions): the sidecar restarting, Redis briefly away.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})

# Trailing metadata of a failed call carrying the core's classification (set by the interceptor).
MD_KIND = "friday-error-kind"
MD_FIELD = "friday-error-field"
MD_RETRIABLE = "friday-retriable"


def status_code(kind: ErrorKind | str) -> grpc.StatusCode:
    """The status code of ``kind`` (an :class:`ErrorKind` or its wire value, e.g. ``"not_found"``).
    INTERNAL for a kind this version does not know."""
    try:
        return STATUS_BY_KIND[ErrorKind(kind)]
    except ValueError:
        return grpc.StatusCode.INTERNAL


# ---------------------------------------------------------------- reading a failure back (the client)

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
