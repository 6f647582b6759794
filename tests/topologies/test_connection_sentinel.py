"""core/connection.py on a real Sentinel set (a master, a replica, three sentinels). Failover: test_failover.py."""

from __future__ import annotations

import uuid

import pytest
from friday_bus.core.connection import build_client, client_mode, close_client, describe, script_then_wait, write_then_wait
from friday_bus.core.settings import Settings
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool, SentinelManagedSSLConnection

from .servers import SentinelSet, free_port, settings_kwargs


def settings_for(sset: SentinelSet, **more) -> Settings:
    return Settings(_env_file=None, **settings_kwargs(sset.env(), **more))


@pytest.fixture
async def client(redis_sentinel):
    c = build_client(settings_for(redis_sentinel))
    try:
        yield c
    finally:
        await close_client(c)


async def test_client_writes_to_the_master_the_sentinels_name(client, redis_sentinel):
    assert client_mode(client) == "sentinel" and isinstance(client.connection_pool, SentinelConnectionPool)
    stream = f"s{uuid.uuid4().hex[:8]}"
    await client.xgroup_create(stream, "g", id="0", mkstream=True)
    entry_id = await client.xadd(stream, {"f": "v"})
    assert (await client.xreadgroup("g", "c", {stream: ">"}, count=1))[0][1] == [(entry_id, {"f": "v"})]
    assert redis_sentinel.master().call("XLEN", stream) == 1
    kw = client.connection_pool.connection_kwargs
    assert (kw["decode_responses"], kw["socket_keepalive"], kw["socket_timeout"]) == (True, True, 5.0)


async def test_describe_reports_master_replica_and_sentinels(client, redis_sentinel):
    d = await describe(client, settings_for(redis_sentinel))
    assert d.mode == "sentinel" and d.service == redis_sentinel.name
    assert d.master == redis_sentinel.reported_master() == redis_sentinel.master().address
    by_role = {role: [n for n in d.nodes if n.role == role] for role in ("master", "replica", "sentinel")}
    assert [n.address for n in by_role["replica"]] == [r.address for r in redis_sentinel.replicas()]
    assert by_role["replica"][0].master == d.master
    assert sorted(n.address for n in by_role["sentinel"]) == sorted(s.address for s in redis_sentinel.sentinels)
    assert all(n.status == "ok" for n in d.nodes), d.nodes
    assert d.server_version == redis_sentinel.master().version()


async def test_write_then_wait_counts_the_replica(client, redis_sentinel):
    stream = f"s{uuid.uuid4().hex[:8]}"
    ack = await write_then_wait(client, ("XADD", stream, "*", "f", "v"), key=stream, replicas=1, timeout_ms=2000)
    assert (ack.replicas, ack.confirmed) == (1, True)
    assert redis_sentinel.replicas()[0].call("XLEN", stream) == 1
    script = client.register_script("return redis.call('XADD', KEYS[1], '*', 'n', ARGV[1])")
    ack = await script_then_wait(client, script, [stream], ["2"], replicas=1, timeout_ms=2000)
    assert ack.replicas == 1 and ack.result.count("-") == 1


async def test_credentials_and_tls_go_where_they_belong(redis_sentinel):
    """Sentinel credentials/TLS reach the sentinel connections; FRIDAY_REDIS_URL's user, password,
    db and TLS reach the data-node connections, which stay sentinel-managed (no I/O here)."""
    s = settings_for(redis_sentinel, redis_url="rediss://app:datapw@not-used:1/2?ssl_cert_reqs=none",
                     redis_sentinel_username="watcher", redis_sentinel_password="sentpw", redis_sentinel_tls=True)
    client = build_client(s)
    try:
        pool = client.connection_pool
        assert issubclass(pool.connection_class, SentinelManagedSSLConnection)
        kw = pool.connection_kwargs
        assert (kw["username"], kw["password"], kw["db"], kw["ssl_cert_reqs"]) == ("app", "datapw", 2, "none")
        assert "host" not in kw or kw["host"] != "not-used"
        sent = pool.sentinel_manager.sentinels[0].connection_pool
        assert issubclass(sent.connection_class, SSLConnection)
        assert (sent.connection_kwargs["username"], sent.connection_kwargs["password"]) == ("watcher", "sentpw")
        assert sent.connection_kwargs["ssl_cert_reqs"] == "none"
        assert [(c.connection_pool.connection_kwargs["host"], c.connection_pool.connection_kwargs["port"])
                for c in pool.sentinel_manager.sentinels] == s.sentinel_addresses
    finally:
        await close_client(client)


async def test_describe_names_an_unreachable_sentinel(redis_sentinel):
    """A listed sentinel that is down is reported as such; the others still name the master."""
    dead = f"127.0.0.1:{free_port()}"
    s = settings_for(redis_sentinel, redis_sentinels=f"{dead},{redis_sentinel.addresses}", redis_connect_timeout_s=1)
    client = build_client(s)
    try:
        d = await describe(client, s)
        assert d.master == redis_sentinel.master().address
        assert [n.status.split(":")[0] for n in d.nodes if n.address == dead] == ["unreachable"]
        await client.set("via-the-others", "1")  # the client skips the dead sentinel as well
    finally:
        await close_client(client)
