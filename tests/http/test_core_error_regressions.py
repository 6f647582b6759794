"""Regressions: core errors the HTTP tests once found unclassified (they answered 500)."""

from __future__ import annotations

from tests.conftest import RedisServer

from .helpers import assert_error


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


def test_rewind_on_a_stream_that_does_not_exist_is_not_found(api, uniq):
    r = api.post(f"/api/v1/streams/{uniq}.never/groups/g/rewind", json={"to_id": "0-0"})
    assert_error(r, 404, "not_found")
