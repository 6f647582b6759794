"""Helpers for the HTTP tests: every test talks to a real `friday serve` process over HTTP, on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis


@pytest.fixture(scope="session")
def rds(redis_server: Any) -> Iterator[redis.Redis]:
    """A plain redis-py client on the test Redis, to check what the sidecar wrote (or did not)."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def api(sidecar: Any) -> Iterator[httpx.Client]:
    """HTTP client of the session sidecar, sending its all-roles key."""
    with sidecar.client() as client:
        yield client


@pytest.fixture
def stream(api: httpx.Client, uniq: str) -> str:
    """A fresh stream (unknown to the topology) with group ``workers`` created through the admin API."""
    name = f"{uniq}.events"
    r = api.post(f"/api/v1/streams/{name}/groups", json={"group": "workers", "start": "all"})
    assert r.status_code == 201, r.text
    return name
