"""ErrorKind -> gRPC status code: the one table (and the metadata keys of a failed call).

The sidecar's error interceptor fails a call with the code of its error's kind; the client
reads it back (a failed call) and gives an error carried inside a stream message (Subscribe,
PublishStream) the code the sidecar would have failed a whole call with. Both import this
module, which imports grpc and the core's error kinds only: not the server, not Redis code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import grpc

from ..core.errors import ErrorKind

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
