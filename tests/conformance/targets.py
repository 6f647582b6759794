"""Where sidecars under test point (a server topology), shared by the conformance suite and the
many-sidecars / failover tests of tests/topologies. Knows the topologies, not the doors."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.crc import key_slot


@dataclass
class Target:
    """Where the suite's sidecars point: FRIDAY_* variables, and (cluster) which shard a stream is on."""

    name: str
    redis_url: str | None
    env: dict[str, str]
    shard_of: Callable[[str], str] | None = None
    shards: list[str] = field(default_factory=list)

    def stream_name(self, prefix: str, i: int) -> str:
        """A unique stream name; on a cluster the ``i``-th name lands on shard ``i % shards``."""
        if self.shard_of is None:
            return f"{prefix}.{uuid.uuid4().hex[:6]}"
        want = self.shards[i % len(self.shards)]
        while True:
            name = f"{prefix}.{uuid.uuid4().hex[:6]}"
            if self.shard_of(name) == want:
                return name


def cluster_shards(cluster: Any) -> tuple[Callable[[str], str], list[str]]:
    """Slot -> master address map of the cluster as it is now (the suite kills no node)."""
    owner: dict[int, str] = {}
    for node in cluster.view():
        if node.is_master and not node.failed:
            for a, b in node.slots:
                for slot in range(a, b + 1):
                    owner[slot] = node.address
    return (lambda name: owner[key_slot(name.encode())]), sorted(set(owner.values()))
