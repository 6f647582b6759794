"""The wire limits of the bus, defined once.

The sidecar's core enforces them; its HTTP schemas, its gRPC servicer, this client and the docs
import (or quote) them from here. This module imports nothing (the sidecar's
``friday_bus.core.limits`` re-exports it, next to its Redis-internal limits).
"""

from __future__ import annotations

# ---------------------------------------------------------------- reading
MAX_READ_COUNT = 1000
"""Most deliveries one read returns (``count``)."""
DEFAULT_READ_COUNT = 10
"""``count`` of a read when the caller gives none."""
MAX_BLOCK_MS = 30_000
"""Longest a read waits for a delivery (``block_ms``)."""
DEFAULT_MAX_IN_FLIGHT = 10
"""Un-settled deliveries a gRPC subscription holds when the caller gives no ``max_in_flight``."""
MAX_IN_FLIGHT = 1000
"""Most un-settled deliveries one gRPC subscription may hold."""

# ---------------------------------------------------------------- settling
MAX_ACK_IDS = 1000
"""Most entry ids one ack (or extend) names."""
MAX_REASON_LENGTH = 4096
"""A nack reason longer than this is cut (with ``...``) before it is stored."""

# ---------------------------------------------------------------- publishing
MAX_BATCH = 1000
"""Most events one publish batch holds."""
MAX_PAYLOAD_KEYS = 2000
"""Most top-level keys one payload holds (nest the rest)."""
MAX_META_LENGTH = 256
"""Longest ``event_id``, ``source`` or ``correlation_id``."""

# ---------------------------------------------------------------- listing
DEFAULT_DLQ_LIST_COUNT = 100
"""Dead letters one listing returns when the caller gives no ``count``."""
