"""Redis command packing in C (hiredis) for the asyncio connections the bus opens.

redis-py's asyncio connections pack every command in pure Python (one ``Encoder.encode``
call per argument); its synchronous client already packs with ``hiredis.pack_command`` when
hiredis is installed. A publish batch of 500 events is one EVALSHA of ~7,000 arguments, and
that packing was half of the core's CPU per event. These classes pack with hiredis and fall
back to redis-py's own packer whenever hiredis refuses an argument (bools, bytearrays, text
that is not valid UTF-8) or the command name holds a space, so what goes on the wire is the
same bytes redis-py would send (hiredis writes ints and floats as ``str``/``repr`` do).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection

try:
    from hiredis import pack_command as _pack
except ImportError:  # hiredis is a dependency (redis[hiredis]); without it redis-py packs
    _pack = None


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        if _pack is not None and type(args[0]) is str and " " not in args[0]:
            try:
                return [_pack(args)]
            except (TypeError, UnicodeError):
                pass  # redis-py's packer encodes (or refuses) it the way it always has
        return super().pack_command(*args)  # type: ignore[misc]


class PackedConnection(_HiredisPacking, Connection):
    pass


class PackedSSLConnection(_HiredisPacking, SSLConnection):
    pass


class PackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


class PackedSentinelConnection(_HiredisPacking, SentinelManagedConnection):
    pass


class PackedSentinelSSLConnection(_HiredisPacking, SentinelManagedSSLConnection):
    pass


PACKED_CLASS = {
    Connection: PackedConnection,
    SSLConnection: PackedSSLConnection,
    UnixDomainSocketConnection: PackedUnixConnection,
}
"""The packed variant of each connection class redis-py's ``parse_url`` may choose."""
