"""Every Redis key the bus writes besides the streams themselves, named in one place.

A stream's key is its name (the seed's publishers and consumers use it as is). Everything the
sidecar adds lives under ``FRIDAY_KEY_PREFIX``: per stream its dead-letter stream and the
idempotency keys of its events, per (stream, group) the retry schedule (a sorted set: entry id
-> due ms) and the last nack reasons (a hash: entry id -> reason), and one setup marker.
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def dlq(self, stream: str) -> str:
        """The dead-letter stream of ``stream``."""
        return f"{self.prefix}dlq:{stream}"

    def retry(self, stream: str, group: str) -> str:
        """When each nacked entry of ``group`` is due again (sorted set, score: due ms)."""
        return f"{self.prefix}retry:{stream}:{group}"

    def reasons(self, stream: str, group: str) -> str:
        """The last nack reason of each entry of ``group`` (hash)."""
        return f"{self.prefix}reasons:{stream}:{group}"

    def idem(self, stream: str, event_id: str) -> str:
        """The first entry id published with ``event_id`` (expires after the idempotency window)."""
        return f"{self.prefix}idem:{stream}:{event_id}"

    @property
    def setup(self) -> str:
        """Present once the topology's setup ran (lost when Redis restarts empty)."""
        return f"{self.prefix}setup"

    def group_keys(self, stream: str, group: str) -> list[str]:
        """KEYS of the scripts that settle a group's entries (CLAIM, NACK, SWEEP):
        stream, retry schedule, nack reasons, dead-letter stream."""
        return [stream, self.retry(stream, group), self.reasons(stream, group), self.dlq(stream)]
