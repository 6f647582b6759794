"""Every limit of the bus, defined once.

The limits a caller sees on the wire (counts, lengths, batch sizes) are defined in the client
distribution (:mod:`friday_bus_client.limits`, which imports nothing) and re-exported here; the
Redis-internal ones are defined below. The core enforces them; the HTTP schemas, the gRPC
servicer, the Python client and the docs import (or quote) them.
"""

from __future__ import annotations

from friday_bus_client.limits import (
    DEFAULT_DLQ_LIST_COUNT,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_READ_COUNT,
    MAX_ACK_IDS,
    MAX_BATCH,
    MAX_BLOCK_MS,
    MAX_IN_FLIGHT,
    MAX_META_LENGTH,
    MAX_PAYLOAD_KEYS,
    MAX_READ_COUNT,
    MAX_REASON_LENGTH,
)

__all__ = [
    "CLAIM_SCAN_MAX",
    "DEFAULT_DLQ_LIST_COUNT",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_READ_COUNT",
    "LAG_COUNT_CAP",
    "MAX_ACK_IDS",
    "MAX_BATCH",
    "MAX_BLOCK_MS",
    "MAX_IN_FLIGHT",
    "MAX_META_LENGTH",
    "MAX_PAYLOAD_KEYS",
    "MAX_READ_COUNT",
    "MAX_REASON_LENGTH",
    "MAX_REDIS_CONNECTIONS",
    "SWEEP_CHUNK",
    "TRIM_CHUNK",
]

# ---------------------------------------------------------------- Redis
MAX_REDIS_CONNECTIONS = 10_000
"""Size of the Redis connection pool: every waiting read (a gRPC subscriber, an HTTP long poll)
holds one while it blocks; redis-py's default of 100 would make the 101st fail as unreachable."""
TRIM_CHUNK = 10_000
"""Entries one safe-trim script call removes at most (the trim loops until done)."""
LAG_COUNT_CAP = 1_000_000
"""Where counting a group's lag by hand stops (when XINFO cannot tell it)."""
SWEEP_CHUNK = 1000
"""Pending entries one recovery-sweep script call inspects per group."""
CLAIM_SCAN_MAX = 1000
"""Most pending entries one claim script call (inside a read) inspects per group."""
