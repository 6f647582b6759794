"""Every Redis key the bus writes besides the streams themselves, named in one place.

A stream's key is its name (the seed's publishers and consumers use it as is). Everything the
sidecar adds lives under ``FRIDAY_KEY_PREFIX``: per stream its dead-letter stream and the
idempotency keys of its events, per (stream, group) the retry schedule (a sorted set: entry id
-> due ms) and the last nack reasons (a hash: entry id -> reason), and one setup marker.

Cluster-safe names (issue 8): every per-stream key carries the stream's name as its hash tag,
``friday:dlq:{email.received}``, ``friday:retry:{email.received}:email-processor``. Redis Cluster
hashes a key with a ``{tag}`` on the tag only, and a key without braces on its whole name, so
the stream ``email.received`` and all its companion keys share one slot: every Lua script (which
must touch keys of one slot only) keeps working on a cluster, and the streams keep the names
Friday's publishers and consumers use. Stream and group names cannot contain braces
(:mod:`.names`): a stream named ``a{b}`` would hash on ``b``, not on its whole name, and its
companions (tagged ``{a{b}``... up to the first ``}``) would land elsewhere. The setup marker is
global and stays untagged. :meth:`Keys.legacy` names the keys of installations before issue 8
(``friday:dlq:email.received``), which setup moves to these names (:mod:`.admin`).
"""

from __future__ import annotations


def tag(stream: str) -> str:
    """``{stream}``: the hash tag that puts a key in ``stream``'s slot."""
    return "{" + stream + "}"


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def dlq(self, stream: str) -> str:
        """The dead-letter stream of ``stream``."""
        return f"{self.prefix}dlq:{tag(stream)}"

    def retry(self, stream: str, group: str) -> str:
        """When each nacked entry of ``group`` is due again (sorted set, score: due ms)."""
        return f"{self.prefix}retry:{tag(stream)}:{group}"

    def reasons(self, stream: str, group: str) -> str:
        """The last nack reason of each entry of ``group`` (hash)."""
        return f"{self.prefix}reasons:{tag(stream)}:{group}"

    def idem(self, stream: str, event_id: str) -> str:
        """The first entry id published with ``event_id`` (expires after the idempotency window)."""
        return f"{self.prefix}idem:{tag(stream)}:{event_id}"

    def idem_pattern(self, stream: str) -> str:
        """SCAN MATCH pattern of every idempotency key of ``stream`` (braces escaped for glob)."""
        return f"{self.prefix}idem:\\{{{_glob(stream)}\\}}:*"

    @property
    def setup(self) -> str:
        """Present once the topology's setup ran (lost when Redis restarts empty). Global: untagged."""
        return f"{self.prefix}setup"

    def group_keys(self, stream: str, group: str) -> list[str]:
        """KEYS of the scripts that settle a group's entries (CLAIM, NACK, SWEEP):
        stream, retry schedule, nack reasons, dead-letter stream (one slot: the stream's)."""
        return [stream, self.retry(stream, group), self.reasons(stream, group), self.dlq(stream)]

    @property
    def legacy(self) -> LegacyKeys:
        """The names before issue 8 (no hash tag), for setup's in-place migration only."""
        return LegacyKeys(self.prefix)


class LegacyKeys:
    """Companion keys as installations before issue 8 named them (standalone only could have them)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def dlq(self, stream: str) -> str:
        return f"{self.prefix}dlq:{stream}"

    def retry(self, stream: str, group: str) -> str:
        return f"{self.prefix}retry:{stream}:{group}"

    def reasons(self, stream: str, group: str) -> str:
        return f"{self.prefix}reasons:{stream}:{group}"

    def idem(self, stream: str, event_id: str) -> str:
        return f"{self.prefix}idem:{stream}:{event_id}"

    def idem_pattern(self, stream: str) -> str:
        return f"{self.prefix}idem:{_glob(stream)}:*"


def _glob(text: str) -> str:
    """``text`` with the glob specials of SCAN MATCH escaped (names allow ``.``, ``_``, ``-``; the
    prefix allows ``:``: none is special, but escaping keeps the pattern exact whatever comes)."""
    return "".join("\\" + ch if ch in "*?[]\\{}^" else ch for ch in text)
