"""Errors of the event bus: the kinds and classes are defined once, in the client distribution
(:mod:`friday_bus_client.errors`, which imports nothing else), and re-exported here so the core
and both doors raise the very classes an agent's client raises. See that module for the
kind -> HTTP / gRPC table. :class:`ConfigError` is the sidecar's own.
"""

from __future__ import annotations

from friday_bus_client.errors import (
    BacklogFull,
    Conflict,
    ErrorKind,
    FridayError,
    InvalidArgument,
    NotFound,
    Unavailable,
)

__all__ = [
    "BacklogFull", "ConfigError", "Conflict", "ErrorKind", "FridayError", "InvalidArgument", "NotFound", "Unavailable",
]


class ConfigError(Exception):
    """A bad setting or topology, raised at start with a message that says how to fix it."""
