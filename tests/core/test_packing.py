"""core/packing.py: commands packed by hiredis are byte for byte what redis-py's own packer
writes, and what hiredis refuses falls back to redis-py (same bytes, same errors)."""

from __future__ import annotations

import pytest
from friday_bus.core import Settings
from friday_bus.core.connection import build_client
from friday_bus.core.packing import (
    PackedConnection,
    PackedSentinelConnection,
    PackedSentinelSSLConnection,
    PackedSSLConnection,
    PackedUnixConnection,
)
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

ARGS = [
    ("EVALSHA", "abc", 2, "k1", "k2", 500, 0, 86400, 0, 4, "f", "v"),
    ("XADD", "s", "*", "text", "é ünïcødé ✓", "big", 2**70, "neg", -12, "float", 0.1, "tiny", 2.5e-10, "huge", 1e300),
    ("SET", "k", b"\x00\xffbytes", "mv", memoryview(b"view")),
    ("XADD", "s", "*", "json", '{"a":[1,2,{"b":null}]}', "empty", ""),
]


def _plain(*args):
    return b"".join(bytes(c) for c in Connection(encoding_errors="replace").pack_command(*args))


def _packed(*args):
    return b"".join(bytes(c) for c in PackedConnection(encoding_errors="replace").pack_command(*args))


@pytest.mark.parametrize("args", ARGS, ids=lambda a: a[0])
def test_packed_bytes_are_redis_pys(args):
    assert _packed(*args) == _plain(*args)


def test_packed_uses_hiredis_for_plain_args():
    # one chunk: hiredis' output (redis-py's packer splits a command into several pieces)
    assert len(PackedConnection().pack_command("XADD", "s", "*", "k", "v" * 10_000)) == 1


@pytest.mark.parametrize("args", [
    ("SET", "k", bytearray(b"x")),            # hiredis refuses bytearray
    ("SET", "k", "lone \ud800 surrogate"),     # not UTF-8: redis-py replaces (encoding_errors="replace")
    ("CONFIG GET", "maxmemory"),               # a command name with a space is split by redis-py
    (b"CLIENT LIST",),
], ids=["bytearray", "surrogate", "spaced-name", "bytes-name"])
def test_what_hiredis_refuses_is_packed_by_redis_py(args):
    assert _packed(*args) == _plain(*args)


def test_bool_is_still_refused_as_redis_py_refuses_it():
    with pytest.raises(DataError):
        PackedConnection().pack_command("SET", "k", True)
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", True)


def _conn_class(client):
    return client.connection_pool.connection_kwargs.get("connection_class") or client.connection_pool.connection_class


@pytest.mark.parametrize(("url", "cls", "base"), [
    ("redis://127.0.0.1:6390/0", PackedConnection, Connection),
    ("rediss://127.0.0.1:6390/0", PackedSSLConnection, SSLConnection),
    ("unix:///tmp/friday-no-such.sock", PackedUnixConnection, UnixDomainSocketConnection),
])
async def test_standalone_clients_pack_with_hiredis(url, cls, base):
    client = build_client(Settings(_env_file=None, redis_url=url))
    try:
        assert client.connection_pool.connection_class is cls
        assert issubclass(cls, base)  # TLS and unix sockets keep their own connection class
    finally:
        await client.aclose()


@pytest.mark.parametrize(("tls", "cls"), [(False, PackedSentinelConnection), (True, PackedSentinelSSLConnection)])
async def test_sentinel_clients_pack_with_hiredis_and_stay_sentinel_managed(tls, cls):
    s = Settings(_env_file=None, redis_mode="sentinel", redis_sentinels="127.0.0.1:26390", redis_sentinel_master="m",
                 redis_url="rediss://127.0.0.1:6390/0" if tls else None)
    client = build_client(s)
    try:
        assert client.connection_pool.connection_class is cls
        assert "ssl" not in client.connection_pool.connection_kwargs
    finally:
        await client.aclose()
