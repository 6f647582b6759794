"""Fixtures of the real topologies (see fixtures.py): imported here for the tests of this folder."""

from .fixtures import (  # noqa: F401 - pytest finds fixtures and hooks by name in a conftest
    heal_cluster,
    heal_sentinel,
    pytest_collection_modifyitems,
    pytest_configure,
    redis_cluster,
    redis_sentinel,
    standalone_redis,
    standalone_valkey,
)
