"""Errors of the event bus, classified once, shared by the sidecar and the client.

Every error the sidecar's core raises is a :class:`FridayError` with one :class:`ErrorKind`;
the client raises the same classes, so ``except NotFound`` reads the same whether an agent
talks to the sidecar over gRPC or embeds the core. The transports map the kind, and only the
kind, to their own status codes (gRPC: :mod:`friday_bus_client._status`, the one table):

==================  ===========  =====================
kind                HTTP         gRPC
==================  ===========  =====================
INVALID             400          INVALID_ARGUMENT
NOT_FOUND           404          NOT_FOUND
CONFLICT            409          FAILED_PRECONDITION
BACKLOG_FULL        429          RESOURCE_EXHAUSTED
UNAVAILABLE         503          UNAVAILABLE
INTERNAL            500          INTERNAL
==================  ===========  =====================

``retriable`` tells a caller whether the same call may succeed later unchanged
(Redis down, backlog full); the others are terminal for that input.
Messages say what to fix and never contain secrets. This module imports nothing but the
standard library (the sidecar's ``friday_bus.core.errors`` re-exports it).
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorKind(str, enum.Enum):
    INVALID = "invalid_argument"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    BACKLOG_FULL = "backlog_full"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"

    @property
    def retriable(self) -> bool:
        return self in (ErrorKind.BACKLOG_FULL, ErrorKind.UNAVAILABLE)


class FridayError(Exception):
    """Base error: ``kind`` classifies it, ``message`` says what to fix."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}

    @property
    def retriable(self) -> bool:
        return self.kind.retriable


class InvalidArgument(FridayError):
    """The input is wrong; the same call will never succeed. Nothing was written."""

    kind = ErrorKind.INVALID


class NotFound(FridayError):
    """An unknown stream, group, channel or entry."""

    kind = ErrorKind.NOT_FOUND


class Conflict(FridayError):
    """The call is valid but the state forbids it (e.g. destroying a group that holds pending entries)."""

    kind = ErrorKind.CONFLICT


class BacklogFull(FridayError):
    """The stream's unacknowledged backlog reached its hard cap; nothing was written. Retry later."""

    kind = ErrorKind.BACKLOG_FULL


class Unavailable(FridayError):
    """Redis cannot be reached or is not ready. Retry later."""

    kind = ErrorKind.UNAVAILABLE


# Raised by the client only (the sidecar's auth interceptor fails the call with these codes).


class Unauthenticated(FridayError):
    """Missing or unknown API key (gRPC UNAUTHENTICATED). Not retriable: fix the key."""

    kind = ErrorKind.INVALID


class PermissionDenied(FridayError):
    """The API key lacks the role the call needs (gRPC PERMISSION_DENIED). Not retriable."""

    kind = ErrorKind.INVALID
