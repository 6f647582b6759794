"""Connecting to an external Redis: password, ACL user, version check."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from friday_bus.core import ConfigError, EventBus, PublishRequest, Settings, Unavailable, build_topology
from friday_bus.core.bus import _parse_version

from tests.conftest import free_port


@pytest.fixture
def secured_redis(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", "s3cret",
         "--user", "agent", "on", ">agentpw", "~*", "&*", "+@all", "-flushall"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the password-protected redis-server did not start")
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("auth", [":s3cret@", "agent:agentpw@"])
async def test_password_and_acl_user(secured_redis, auth, uniq):
    s = Settings(_env_file=None, redis_url=f"redis://{auth}127.0.0.1:{secured_redis}/0")
    bus = EventBus.from_url(s.redis_url, s, build_topology(s))
    try:
        assert (await bus.check_server()).startswith("7.")
        await bus.setup()
        r = await bus.publish(PublishRequest("email.received", {"k": uniq}))
        assert r.entry_id
    finally:
        await bus.close()


async def test_wrong_password_is_a_clear_error(secured_redis):
    s = Settings(_env_file=None, redis_url=f"redis://:wrong@127.0.0.1:{secured_redis}/0")
    bus = EventBus.from_url(s.redis_url, s, build_topology(s))
    try:
        with pytest.raises(ConfigError) as exc:
            await bus.check_server()
        assert "FRIDAY_REDIS_URL" in str(exc.value)
        assert "wrong" not in str(exc.value)  # the password never appears in errors
    finally:
        await bus.close()


async def test_missing_password_is_a_clear_error(secured_redis):
    s = Settings(_env_file=None, redis_url=f"redis://127.0.0.1:{secured_redis}/0")
    bus = EventBus.from_url(s.redis_url, s, build_topology(s))
    try:
        with pytest.raises(ConfigError) as exc:
            await bus.check_server()
        assert "password" in str(exc.value)
    finally:
        await bus.close()


async def test_unreachable_redis_is_unavailable():
    s = Settings(_env_file=None, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    bus = EventBus.from_url(s.redis_url, s, build_topology(s))
    try:
        with pytest.raises(Unavailable):
            await bus.check_server()
        with pytest.raises(Unavailable):
            await bus.publish(PublishRequest("email.received", {"x": 1}))
    finally:
        await bus.close()


def test_version_parsing():
    assert _parse_version("7.0.15") == (7, 0, 15)
    assert _parse_version("6.2.14") < (7, 0, 0)
    assert _parse_version("255.255.255-rc1") > (7, 0, 0)
