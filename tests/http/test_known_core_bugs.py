"""Bugs found by the HTTP tests in the core (sidecar/friday_bus/core/bus.py), reported to its owner.

Each is a strict xfail: it fails today with a 500, and turns into an XPASS failure once the core
classifies the error, so the marker (and the matching entry in schemathesis_hooks.KNOWN_CORE_500S)
gets removed.
"""

from __future__ import annotations

import pytest

from tests.conftest import RedisServer

from .helpers import assert_error


@pytest.mark.xfail(strict=True, reason="core: NACK script's NOGROUP on a destroyed topology group is not classified (500)")
def test_nack_on_a_destroyed_topology_group_is_not_found(start_sidecar, tmp_path):
    redis = RedisServer(tmp_path / "redis").start()  # own Redis: this destroys a seed group
    try:
        car = start_sidecar(redis_url=redis.url)
        with car.client() as c:
            assert c.delete("/api/v1/streams/email.received/groups/email-processor", params={"force": "true"}).status_code == 200
            r = c.post("/api/v1/streams/email.received/groups/email-processor/nack", json={"id": "1-0", "reason": "x"})
            assert_error(r, 404, "not_found")
    finally:
        redis.stop()


@pytest.mark.xfail(strict=True, reason="core: XGROUP SETID on a missing stream ('requires the key to exist') is not classified (500)")
def test_rewind_on_a_stream_that_does_not_exist_is_not_found(api, uniq):
    r = api.post(f"/api/v1/streams/{uniq}.never/groups/g/rewind", json={"to_id": "0-0"})
    assert_error(r, 404, "not_found")
