"""Redis clients for the three modes, what they are connected to, and replica-acknowledged writes.

No transport imports: the runtime, the CLI (``friday config`` / ``friday status``) and the doors
(``/readyz``) all use this module the same way.

Building a client
=================
``build_client(settings, url=None, *, block_ms=0)`` returns a redis.asyncio client for
``settings.redis_mode``:

* ``standalone``: ``redis.asyncio.Redis.from_url(url)`` (``url`` defaults to FRIDAY_REDIS_URL; the
  runtime passes the embedded server's ``unix://`` URL when it started one).
* ``cluster``: ``redis.asyncio.cluster.RedisCluster`` from the URL of any node; it discovers
  the others (CLUSTER SLOTS), follows MOVED and ASK by itself, and after a failover or a
  resharding refreshes its slot map on the next error. Retries: :data:`CLUSTER_RETRIES`
  (see below).
* ``sentinel``: ``Sentinel(FRIDAY_REDIS_SENTINELS).master_for(FRIDAY_REDIS_SENTINEL_MASTER)``:
  every new connection asks the sentinels for the master, and a connection to a demoted master
  (READONLY) is dropped, so after a failover the same client writes to the new master without a
  restart. User, password, TLS and db of the data nodes come from FRIDAY_REDIS_URL (its host is
  not used); the sentinels' own credentials from FRIDAY_REDIS_SENTINEL_USERNAME/_PASSWORD/_TLS.

Sentinel mode has one more duty for the runtime: call ``await refresh_master(client)`` every
second or so (the monitor loop). redis-py asks the sentinels only when it opens a connection,
so when the old master stays up (SENTINEL FAILOVER, a healed partition) a busy pool kept
writing to it for 11.5 s in the test (those writes are lost); with ``refresh_master`` every
0.5 s it moved within 0.9 s. After a kill -9 it is not needed (the connections break).
``close_client(client)`` closes the client and, in sentinel mode, the sentinel connections.

Common options, for every mode, as ``EventBus.from_url`` had them: ``decode_responses=True``,
``encoding_errors="replace"``, ``health_check_interval`` (:data:`HEALTH_CHECK_INTERVAL_S`),
``max_connections`` (:data:`~.limits.MAX_REDIS_CONNECTIONS`; per node on a cluster),
``socket_keepalive`` over TCP, plus the explicit FRIDAY_REDIS_CONNECT_TIMEOUT_S and
FRIDAY_REDIS_SOCKET_TIMEOUT_S.

Blocking reads and the socket timeout
-------------------------------------
redis-py has one read timeout per connection (``socket_timeout``), not one per command, so an
``XREADGROUP ... BLOCK 30000`` on a client with a 5 s socket timeout would be cut after 5 s
(``TimeoutError``). Hence ``block_ms``: the client built with ``block_ms=B`` waits
``FRIDAY_REDIS_SOCKET_TIMEOUT_S + B/1000`` for a reply (:func:`socket_timeout_for`). The lead's
wiring: two clients from the same settings,

* ``client = build_client(s, url)`` for every command that answers at once, and
* ``blocking = build_client(s, url, block_ms=MAX_BLOCK_MS)`` for ``XREADGROUP``/``XREAD`` with
  ``BLOCK`` (and nothing else), so that a blocked read is never cut, and a dead server is
  still noticed within the socket timeout by every ordinary command. A second pool also keeps
  waiting reads from taking the connections that publishes need.

(One client with ``block_ms=MAX_BLOCK_MS`` for everything works as well, at the price of
noticing a black-holed node only after 35 s.) Pub/Sub ``get_message(timeout=...)`` passes its own
read timeout and needs neither. ``WAIT`` blocks up to FRIDAY_REPLICA_ACK_TIMEOUT_MS, which the
settings keep below the socket timeout.

Retries
-------
Standalone and sentinel clients retry nothing (as today): a failed command raises at once and
the next command reconnects (sentinel: to whatever master the sentinels name then). The
cluster client retries a command :data:`CLUSTER_RETRIES` times on ConnectionError, TimeoutError
and CLUSTERDOWN, refreshing the slot map in between (redis-py's default is 10, without any
pause on connection errors; fewer bounds the stall on a black-holed node to
``(1 + CLUSTER_RETRIES) * connect timeout``). A retried write whose reply was lost may be
applied twice: publishes need their idempotency key for that, on a cluster as after any
"may or may not exist".

Describing what the client is connected to
==========================================
``await describe(client, settings)`` -> :class:`RedisDescription`: the mode, the nodes known
(``host:port``, role ``master``/``replica``/``sentinel``, status ``ok`` or what is wrong) and
the master(s) serving now: for sentinel the address the sentinels report
(``SENTINEL GET-MASTER-ADDR-BY-NAME``, the majority answer), for a cluster every master with
its slot ranges (``CLUSTER NODES``). It never raises for an unreachable node: that node's
status says so (``masters`` is empty when no master can be found). ``.as_dict()`` is
JSON-ready for ``friday config``, ``friday status`` and ``/readyz``.

Replica-acknowledged writes (FRIDAY_MIN_REPLICAS_ACK)
====================================================
``WAIT numreplicas timeout`` returns how many replicas acknowledged *the writes of the
connection that sends it*: it waits for that connection's last write offset. Checked against
Redis 7.0 and Valkey 9.1 (tests/topologies/test_wait_facts.py, a replica frozen with SIGSTOP):

* in a Lua script Redis refuses it (``This Redis command is not allowed from script``);
  Valkey runs it but does not block, and counts only the writes made *before* the script
  (the script's own are propagated after it): a false "1";
* inside MULTI/EXEC it does not block either: answered at once, so a transaction is no way;
* on another connection (one of the pool that wrote earlier) it answers at once with the
  replicas that caught up with *that* connection's old writes: a false "1";
* so the write and the WAIT go in one non-transactional pipeline: one connection, one round
  trip, ``[write reply, replicas]``.

On a cluster the pair must also reach the master that owns the key's slot, on one of its
connections: :func:`write_then_wait` sends both to ``client.get_node_from_key(key)`` in one
batch on one connection (``ClusterNode.execute_pipeline``) and follows redirections itself.
A ``MOVED`` reply means the write was not applied there: the slot map is refreshed and the
pair sent again to the new owner; an ``ASK`` reply (a slot being migrated) sends ``ASKING``
+ write + WAIT to the importing node. The WAIT reply of a redirected attempt is ignored: it
counts the replicas of a connection that wrote nothing. redis-py's ClusterPipeline is not
used for this, because it cannot keep the pair together: its redirection re-sends the write
alone on another connection (keeping the false count), and its retry after a connection
failure drops each command's ``target_nodes``, so the keyless WAIT lands on some other node
and answers "1" for a write it never saw (this happened in the kill -9 test).

How the lead uses it for a publish (EVALSHA of the PUBLISH script)::

    ack = await script_then_wait(client, bus_scripts["PUBLISH"], keys=[stream, ...], args=[...],
                                 replicas=s.min_replicas_ack, timeout_ms=s.replica_ack_timeout_ms)
    if not ack.confirmed:   # ack.replicas < s.min_replicas_ack
        raise Unavailable("... not confirmed by N replicas in T ms: the entry may or may not exist; "
                          "retry with the same idempotency key")
    ack.result              # the script's reply

``keys[0]`` routes on a cluster (every key of one call must share its slot, as for any
script). A ``NOSCRIPT`` reply (a new master after a failover has an empty script cache) is
answered by sending the script's source with EVAL, once. Errors of the write itself (a
script's ``error_reply``, WRONGTYPE...) are raised as redis-py raised them; a connection
lost after the write was sent is raised too (``ConnectionError``/``TimeoutError``): the
entry may or may not exist. With ``replicas=0`` the write runs alone (no WAIT).

Guarantee, plainly: a confirmed write (``ack.confirmed``) is on the master and on N replicas'
memory, so a failover to one of them keeps it; WAIT does not fsync (a crash of master *and*
replicas can still lose it). With one replica per master, the master promoted by a failover
has none until the old one returns, so with FRIDAY_MIN_REPLICAS_ACK=1 every publish to that
master (shard) is refused until then (seen in both failover tests); give each master two
replicas to keep publishing through one failover. Redis's own ``min-replicas-to-write``
(server config) is the complementary guard: it makes a master refuse writes outright when
too few replicas are connected.

Not possible with Redis (or redis-py) as they are: WAIT from inside the script (above); a
per-command read timeout in redis-py (hence ``block_ms``); WAIT cannot make a write durable
across a crash of master *and* replicas, nor undo a write that was not confirmed in time: it
only tells. WAITAOF (fsync on replicas) needs Redis >= 7.2 (not Debian's 7.0).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.cluster import ClusterNode, PipelineCommand, RedisCluster
from redis.asyncio.connection import Connection, SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff

from .errors import ConfigError
from .limits import MAX_REDIS_CONNECTIONS
from .packing import PACKED_CLASS, PackedConnection, PackedSentinelConnection, PackedSentinelSSLConnection
from .settings import Settings

RedisClient = aioredis.Redis | RedisCluster

HEALTH_CHECK_INTERVAL_S = 30
"""A connection idle this long is PINGed before it is used again."""
CLUSTER_RETRIES = 3
"""Retries of one cluster command on ConnectionError / TimeoutError / CLUSTERDOWN, the slot map
refreshed in between (CLUSTERDOWN: redis-py pauses 0.25 s each time)."""
MAX_REDIRECTS = 5
"""MOVED / ASK / TRYAGAIN replies :func:`write_then_wait` follows before it gives up."""
TRYAGAIN_PAUSE_S = 0.05
_URL_TIMEOUT_PARAMS = ("socket_timeout", "socket_connect_timeout")


# ------------------------------------------------------------------------------ building
def socket_timeout_for(settings: Settings, block_ms: int = 0) -> float:
    """Read timeout of a client whose longest command blocks ``block_ms`` on the server."""
    if block_ms < 0:
        raise ValueError("block_ms must be >= 0")
    return settings.redis_socket_timeout_s + block_ms / 1000


def _strip_timeouts(url: str) -> str:
    """The URL without ?socket_timeout / ?socket_connect_timeout: the settings took them over,
    and redis-py would let the URL win over the explicit (block-aware) values."""
    u = urlparse(url)
    if not u.query:
        return url
    query = [(k, v) for k, v in parse_qsl(u.query, keep_blank_values=True) if k not in _URL_TIMEOUT_PARAMS]
    return urlunparse(u._replace(query=urlencode(query)))


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def _common_options(settings: Settings, block_ms: int, tcp: bool) -> dict[str, Any]:
    options: dict[str, Any] = {
        "decode_responses": True,
        "encoding_errors": "replace",
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        # Every waiting read (a gRPC subscriber, an HTTP long poll) holds a connection while it
        # blocks; redis-py's default pool of 100 would make the 101st caller fail as "unreachable".
        "max_connections": MAX_REDIS_CONNECTIONS,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_timeout": socket_timeout_for(settings, block_ms),
    }
    if tcp:
        options["socket_keepalive"] = True
    return options


def build_client(settings: Settings, url: str | None = None, *, block_ms: int = 0) -> RedisClient:
    """A redis.asyncio client for ``settings.redis_mode`` (no I/O yet: it connects on first use).

    ``url``: overrides FRIDAY_REDIS_URL (the runtime passes the embedded server's URL).
    ``block_ms``: the longest ``BLOCK`` this client's commands will use (see the module notes).
    Raises ConfigError for a URL or an option redis-py refuses.
    """
    mode = settings.redis_mode
    url = url or settings.redis_url
    try:
        if mode == "cluster":
            if url is None:
                raise ConfigError("FRIDAY_REDIS_MODE=cluster needs FRIDAY_REDIS_URL naming any node of the cluster")
            options = _common_options(settings, block_ms, tcp=True)
            options["retry"] = Retry(ExponentialWithJitterBackoff(), CLUSTER_RETRIES)
            cluster = RedisCluster.from_url(_strip_timeouts(url), **options)
            if not url.startswith("rediss://"):  # with TLS, RedisCluster's SSLConnection (packed by redis-py)
                # RedisCluster takes no connection class: every node it creates (startup ones now,
                # discovered ones later) gets its connection_kwargs' class.
                cluster.nodes_manager.connection_kwargs["connection_class"] = PackedConnection
                for node in cluster.nodes_manager.startup_nodes.values():
                    node.connection_class = PackedConnection
            return cluster
        if mode == "sentinel":
            return _sentinel_client(settings, url, block_ms)
        if url is None:
            raise ConfigError("no Redis URL: set FRIDAY_REDIS_URL, or let the runtime start the embedded Redis")
        options = _common_options(settings, block_ms, tcp=not url.startswith("unix://"))
        options["retry"] = _no_retry()  # what from_url gave before, explicit
        # Redis.from_url, with the URL's connection class swapped for its hiredis-packing variant
        # (from_url would let the URL's class win over an explicit one).
        url_options = parse_url(_strip_timeouts(url))
        options.update(url_options)
        options["connection_class"] = PACKED_CLASS[url_options.get("connection_class", Connection)]
        return aioredis.Redis.from_pool(aioredis.ConnectionPool(**options))
    except (TypeError, ValueError, rexc.RedisClusterException) as exc:
        raise ConfigError(f"FRIDAY_REDIS_URL is not usable in {mode} mode: {exc}") from None


def _sentinel_client(settings: Settings, url: str | None, block_ms: int) -> aioredis.Redis:
    data: dict[str, Any] = dict(parse_url(_strip_timeouts(url))) if url else {}
    data.pop("host", None)
    data.pop("port", None)
    tls = data.pop("connection_class", None) is SSLConnection
    # SentinelConnectionPool picks its (TLS) connection class from ``ssl``; a connection_class
    # from the URL would replace the sentinel-managed one and lose the failover handling.
    ssl_options = {k: v for k, v in data.items() if k.startswith("ssl_")}
    data.update(_common_options(settings, block_ms, tcp=True))
    # Given explicitly, the class also keeps ``ssl`` out of the pool's kwargs (the pool pops it
    # only when it picks the class itself).
    data["connection_class"] = PackedSentinelSSLConnection if tls else PackedSentinelConnection
    data["retry"] = _no_retry()
    sentinel_kwargs: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        # redis-py's Redis(host=...) retries a refused connection 10 times with backoff (~7 s):
        # a dead sentinel must be skipped at once for the next one.
        "retry": _no_retry(),
    }
    if settings.redis_sentinel_username:
        sentinel_kwargs["username"] = settings.redis_sentinel_username
    if settings.redis_sentinel_password is not None:
        sentinel_kwargs["password"] = settings.redis_sentinel_password.get_secret_value()
    if settings.redis_sentinel_tls:
        sentinel_kwargs["ssl"] = True
        sentinel_kwargs.update(ssl_options)
    sentinel = Sentinel(settings.sentinel_addresses, sentinel_kwargs=sentinel_kwargs, **data)
    assert settings.redis_sentinel_master is not None  # the settings refuse sentinel mode without it
    return sentinel.master_for(settings.redis_sentinel_master)


def client_mode(client: RedisClient) -> str:
    """``standalone``, ``cluster`` or ``sentinel``: what kind of client this is."""
    if isinstance(client, RedisCluster):
        return "cluster"
    if isinstance(getattr(client, "connection_pool", None), SentinelConnectionPool):
        return "sentinel"
    return "standalone"


def _sentinel_of(client: RedisClient) -> tuple[Sentinel, str] | None:
    pool = getattr(client, "connection_pool", None)
    if isinstance(pool, SentinelConnectionPool):
        return pool.sentinel_manager, pool.service_name
    return None


async def refresh_master(client: RedisClient) -> str | None:
    """Sentinel mode: ask the sentinels for the master now, and move every connection that is
    still on another node: idle ones are closed at once, busy ones when their command is done
    (marked for reconnect). Returns ``host:port``; None in the other modes. Raises
    MasterNotFoundError (a ConnectionError) when no sentinel names a live master.

    Why: redis-py asks the sentinels only when it opens a connection, and drops only *idle*
    connections when it notices a move. When the old master stays up (SENTINEL FAILOVER, a
    partition that heals), a busy pool keeps writing to it until the sentinels demote it
    (~11-16 s in tests/topologies/test_failover.py), and those writes are lost when it resyncs
    (WAIT answers 0 for them). Call this every second or so (the runtime's monitor loop).
    """
    pool = getattr(client, "connection_pool", None)
    if not isinstance(pool, SentinelConnectionPool):
        return None
    master = tuple(await pool.get_master_address())  # redis-py closes idle connections if it moved
    # redis-py has no public way to list a pool's connections: its two lists, guarded.
    for conn in list(getattr(pool, "_available_connections", [])):
        if conn.is_connected and (conn.host, conn.port) != master:
            await conn.disconnect()
    for conn in list(getattr(pool, "_in_use_connections", [])):
        mark = getattr(conn, "mark_for_reconnect", None)  # redis-py >= 7: closed when released
        if mark is not None and conn.is_connected and (conn.host, conn.port) != master:
            mark()
    return f"{master[0]}:{master[1]}"


async def close_client(client: RedisClient) -> None:
    """Close the client and, in sentinel mode, its connections to the sentinels as well."""
    found = _sentinel_of(client)
    await client.aclose()
    if found is not None:
        for s in found[0].sentinels:
            with contextlib.suppress(Exception):
                await s.aclose()


# ------------------------------------------------------------------------------ describing
@dataclass(frozen=True, slots=True)
class RedisNode:
    address: str
    """``host:port`` (or the unix socket path)."""
    role: str
    """``master``, ``replica`` or ``sentinel``."""
    status: str = "ok"
    """``ok``, or what is wrong: ``unreachable: ...``, ``fail``, ``s_down``, ``link down`` ..."""
    slots: tuple[tuple[int, int], ...] = ()
    """Cluster masters: the slot ranges they serve."""
    master: str | None = None
    """Replicas: the address of the master they follow."""


@dataclass(frozen=True, slots=True)
class RedisDescription:
    mode: str
    nodes: tuple[RedisNode, ...]
    """Every node known: data nodes, then (sentinel mode) the sentinels."""
    masters: tuple[RedisNode, ...] = field(default=())
    """The master(s) serving now: one (standalone, sentinel) or one per shard (cluster)."""
    service: str | None = None
    """Sentinel mode: the monitored master name."""
    server_version: str | None = None

    @property
    def master(self) -> str | None:
        """Address of the serving master in standalone / sentinel mode (None on a cluster)."""
        return self.masters[0].address if len(self.masters) == 1 and self.mode != "cluster" else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unreachable(exc: BaseException) -> str:
    return f"unreachable: {exc}" if str(exc) else f"unreachable: {type(exc).__name__}"


_DOWN = (rexc.ConnectionError, rexc.TimeoutError, OSError, asyncio.TimeoutError)


async def describe(client: RedisClient, settings: Settings) -> RedisDescription:
    """Mode, nodes and serving master(s), asked of Redis now. Never raises for a node that is down."""
    if isinstance(client, RedisCluster):
        return await _describe_cluster(client)
    found = _sentinel_of(client)
    if found is not None:
        return await _describe_sentinel(client, found[0], found[1], settings)
    return await _describe_standalone(client)


def _address_of(client: aioredis.Redis) -> str:
    kw = client.connection_pool.connection_kwargs
    if kw.get("path"):
        return str(kw["path"])
    return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"


def _version(info: dict[str, Any]) -> str | None:
    v = info.get("valkey_version") or info.get("redis_version")
    return str(v) if v is not None else None


async def _describe_standalone(client: aioredis.Redis) -> RedisDescription:
    address = _address_of(client)
    try:
        info = await client.info("replication")
        server = await client.info("server")
    except _DOWN as exc:
        return RedisDescription("standalone", (RedisNode(address, "master", _unreachable(exc)),))
    if info.get("role") == "slave":
        me = RedisNode(address, "replica", "ok" if info.get("master_link_status") == "up" else "link down",
                       master=f"{info.get('master_host')}:{info.get('master_port')}")
        return RedisDescription("standalone", (me,), (), server_version=_version(server))
    me = RedisNode(address, "master")
    replicas = []
    for k, v in info.items():
        if k.startswith("slave") and k[5:].isdigit() and isinstance(v, dict):
            replicas.append(RedisNode(f"{v.get('ip')}:{v.get('port')}", "replica",
                                      "ok" if v.get("state") == "online" else str(v.get("state")), master=address))
    return RedisDescription("standalone", (me, *replicas), (me,), server_version=_version(server))


def _pairs(flat: Any) -> dict[str, str]:
    if isinstance(flat, dict):
        return {str(k): str(v) for k, v in flat.items()}
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}


def _sentinel_flags_status(flags: str) -> str:
    bad = [f for f in flags.split(",") if f in ("s_down", "o_down", "disconnected", "failover_in_progress")]
    return ",".join(bad) or "ok"


async def _describe_sentinel(client: aioredis.Redis, sentinel: Sentinel, name: str, settings: Settings) -> RedisDescription:
    sentinel_nodes: list[RedisNode] = []
    answers: list[str] = []
    state: dict[str, str] | None = None
    replicas_raw: list[Any] = []
    for s in sentinel.sentinels:
        address = _address_of(s)
        try:
            reply = await s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
            if not reply:
                sentinel_nodes.append(RedisNode(address, "sentinel", f"does not monitor {name!r}"))
                continue
            answers.append(f"{reply[0]}:{reply[1]}")
            if state is None:
                state = _pairs(await s.execute_command("SENTINEL", "MASTER", name))
                replicas_raw = list(await s.execute_command("SENTINEL", "REPLICAS", name))
            sentinel_nodes.append(RedisNode(address, "sentinel"))
        except rexc.ResponseError as exc:
            sentinel_nodes.append(RedisNode(address, "sentinel", f"error: {exc}"))
        except _DOWN as exc:
            sentinel_nodes.append(RedisNode(address, "sentinel", _unreachable(exc)))
    if not answers:
        return RedisDescription("sentinel", tuple(sentinel_nodes), (), service=name)
    master_addr, _ = Counter(answers).most_common(1)[0]
    master = RedisNode(master_addr, "master", _sentinel_flags_status(state.get("flags", "")) if state else "ok")
    replicas = []
    for raw in replicas_raw:
        r = _pairs(raw)
        replicas.append(RedisNode(f"{r.get('ip')}:{r.get('port')}", "replica", _sentinel_flags_status(r.get("flags", "")),
                                  master=f"{r.get('master-host')}:{r.get('master-port')}"))
    version = None
    with contextlib.suppress(*_DOWN, rexc.ResponseError):
        version = _version(await client.info("server"))
    return RedisDescription("sentinel", (master, *replicas, *sentinel_nodes), (master,), service=name, server_version=version)


def _cluster_status(flags: set[str], connected: Any) -> str:
    bad = sorted(flags & {"fail", "fail?", "handshake", "noaddr"})
    if bad:
        return ",".join(bad)
    return "ok" if connected in (True, "connected", None) else "disconnected"


async def _describe_cluster(client: RedisCluster) -> RedisDescription:
    try:
        nodes: dict[str, Any] = dict(await client.cluster_nodes())  # type: ignore[arg-type]
        version = None
        with contextlib.suppress(*_DOWN, rexc.ResponseError):
            info = await client.info("server", target_nodes=RedisCluster.RANDOM)
            version = _version(info)
    except (*_DOWN, rexc.ClusterError, rexc.RedisClusterException) as exc:
        known = tuple(RedisNode(n.name, "master" if n.server_type == "primary" else "replica", _unreachable(exc))
                      for n in client.get_nodes())
        return RedisDescription("cluster", known, ())
    by_id = {v["node_id"]: k for k, v in nodes.items()}
    out: list[RedisNode] = []
    for address, v in nodes.items():
        flags = set(str(v.get("flags", "")).replace("myself,", "").split(","))
        status = _cluster_status(flags, v.get("connected"))
        if "master" in flags:
            slots = tuple(sorted((int(r[0]), int(r[-1])) for r in v.get("slots", []) if r))
            out.append(RedisNode(address, "master", status, slots))
        else:
            out.append(RedisNode(address, "replica", status, master=by_id.get(v.get("master_id", ""), None)))
    out.sort(key=lambda n: (n.role != "master", n.slots[:1] or ((99999, 0),), n.address))
    masters = tuple(n for n in out if n.role == "master" and n.slots and n.status == "ok")
    return RedisDescription("cluster", tuple(out), masters, server_version=version)


# ------------------------------------------------------------------------------ write, then WAIT
@dataclass(frozen=True, slots=True)
class AckedWrite:
    result: Any
    """The write's own reply."""
    replicas: int
    """Replicas that acknowledged it (WAIT's answer); 0 when ``requested`` was 0 (no WAIT sent)."""
    requested: int

    @property
    def confirmed(self) -> bool:
        return self.replicas >= self.requested


def _script_source_and_sha(script: Any) -> tuple[str, str]:
    if isinstance(script, str):
        return script, hashlib.sha1(script.encode()).hexdigest()
    source = script.script if isinstance(script.script, str) else script.script.decode()
    return source, script.sha


async def script_then_wait(client: RedisClient, script: Any, keys: Sequence[Any], args: Sequence[Any], *,
                           replicas: int, timeout_ms: int) -> AckedWrite:
    """Run a Lua script (a registered ``AsyncScript`` or its source) and WAIT for ``replicas`` on
    the same connection. ``keys[0]`` routes on a cluster. NOSCRIPT is answered with EVAL once."""
    if not keys:
        raise ValueError("script_then_wait needs at least one key (it routes the call on a cluster)")
    source, sha = _script_source_and_sha(script)
    evalsha = ("EVALSHA", sha, len(keys), *keys, *args)
    evalsrc = ("EVAL", source, len(keys), *keys, *args)
    return await _write_then_wait(client, evalsha, str(keys[0]), replicas, timeout_ms, fallback=evalsrc)


async def write_then_wait(client: RedisClient, command: Sequence[Any], *, key: str, replicas: int,
                          timeout_ms: int) -> AckedWrite:
    """Send ``command`` (e.g. ``("XADD", stream, "*", "f", "v")``) then ``WAIT replicas timeout_ms``
    on the same connection, in one round trip. ``key``: the key that routes it on a cluster."""
    return await _write_then_wait(client, tuple(command), key, replicas, timeout_ms)


async def _write_then_wait(client: RedisClient, command: tuple[Any, ...], key: str, replicas: int, timeout_ms: int,
                           fallback: tuple[Any, ...] | None = None) -> AckedWrite:
    if replicas < 0 or timeout_ms <= 0:
        raise ValueError("replicas must be >= 0 and timeout_ms > 0 (WAIT 0 would wait forever)")
    if replicas == 0:
        return AckedWrite(await _run_with_fallback(client, command, fallback), 0, 0)
    if isinstance(client, RedisCluster):
        return await _cluster_write_then_wait(client, command, key, replicas, timeout_ms, fallback)
    return await _single_write_then_wait(client, command, replicas, timeout_ms, fallback)


async def _run_with_fallback(client: RedisClient, command: tuple[Any, ...], fallback: tuple[Any, ...] | None) -> Any:
    try:
        return await client.execute_command(*command)
    except rexc.NoScriptError:
        if fallback is None:
            raise
        return await client.execute_command(*fallback)


async def _single_write_then_wait(client: aioredis.Redis, command: tuple[Any, ...], replicas: int, timeout_ms: int,
                                  fallback: tuple[Any, ...] | None) -> AckedWrite:
    for attempt in (command, fallback):
        if attempt is None:
            break
        async with client.pipeline(transaction=False) as pipe:
            pipe.execute_command(*attempt)
            pipe.execute_command("WAIT", replicas, timeout_ms)
            write, acked = await pipe.execute(raise_on_error=False)
        if isinstance(write, rexc.NoScriptError) and attempt is command and fallback is not None:
            continue
        return _acked(write, acked, replicas)
    raise AssertionError("unreachable")


def _acked(write: Any, acked: Any, replicas: int) -> AckedWrite:
    if isinstance(write, Exception):
        raise write
    if isinstance(acked, Exception):
        raise acked  # the connection failed after the write was sent: it may or may not be applied
    return AckedWrite(write, int(acked), replicas)


async def _refresh_slots(client: RedisCluster) -> None:
    """Re-read the slot map (CLUSTER SLOTS from a live node); errors are left to the next command."""
    with contextlib.suppress(*_DOWN, rexc.RedisError):
        await client.nodes_manager.initialize()


async def _on_one_connection(node: ClusterNode, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` to ``node`` on one of its connections, in one round trip; their replies
    (an error reply as its exception). Not redis-py's ClusterPipeline: when its first attempt
    fails to connect it retries with the ``target_nodes`` of each command dropped, and a keyless
    WAIT then goes to some other node and answers a false count (seen in the failover test)."""
    cmds = [PipelineCommand(i, *c) for i, c in enumerate(commands)]
    await node.execute_pipeline(cmds)  # a connection failure while sending raises
    return [c.result for c in cmds]


async def _cluster_write_then_wait(client: RedisCluster, command: tuple[Any, ...], key: str, replicas: int, timeout_ms: int,
                                   fallback: tuple[Any, ...] | None) -> AckedWrite:
    await client.initialize()
    node: ClusterNode | None = client.get_node_from_key(key)
    asking = False
    current = command
    for _ in range(MAX_REDIRECTS + 2):  # + the NOSCRIPT fallback
        assert node is not None
        batch: list[tuple[Any, ...]] = [("ASKING",)] if asking else []
        batch += [current, ("WAIT", replicas, timeout_ms)]
        try:
            results = await _on_one_connection(node, batch)
        except (*_DOWN, rexc.ClusterDownError):
            await _refresh_slots(client)
            raise
        write, acked = results[-2], results[-1]
        was_asking, asking = asking, False
        if isinstance(write, rexc.MovedError):
            await _refresh_slots(client)
            node = client.get_node_from_key(key)
            continue
        if isinstance(write, rexc.AskError):
            node = client.get_node(host=write.host, port=write.port)
            if node is None:
                await _refresh_slots(client)
                node = client.get_node(host=write.host, port=write.port)
                if node is None:
                    raise write
            asking = True
            continue
        if isinstance(write, rexc.TryAgainError):
            await asyncio.sleep(TRYAGAIN_PAUSE_S)
            asking = was_asking
            continue
        if isinstance(write, rexc.NoScriptError) and fallback is not None and current is not fallback:
            current = fallback
            asking = was_asking
            continue
        if isinstance(write, (*_DOWN, rexc.ClusterDownError)) or isinstance(acked, _DOWN):
            await _refresh_slots(client)
        return _acked(write, acked, replicas)
    raise rexc.ClusterError(f"write_then_wait: still redirected after {MAX_REDIRECTS} attempts (slot of {key!r} moving?)")
