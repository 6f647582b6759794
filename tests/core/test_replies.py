"""Redis error replies are recognised in one place (reply_kind), and classified once at the facade."""

from __future__ import annotations

import asyncio

import pytest
from friday_bus.core import BacklogFull, FridayError, NotFound, Unavailable
from friday_bus.core.bus import _redis_errors
from friday_bus.core.errors import ErrorKind
from friday_bus.core.replies import ReplyKind, reply_kind, vanished
from redis import exceptions as rexc
from redis._parsers.base import BaseParser


def redis_py(reply: str) -> Exception:
    """The exception redis-py raises for this error reply (some codes are stripped from the message)."""
    return BaseParser.parse_error(reply)


@pytest.mark.parametrize("reply, kind", [
    ("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option", ReplyKind.NOGROUP),
    ("ERR Error running script (call to f_1): @user_script:5: NOGROUP No such key 's'", ReplyKind.NOGROUP),
    ("ERR no such key", ReplyKind.NO_SUCH_KEY),
    ("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option",
     ReplyKind.NO_SUCH_KEY),
    ("UNBLOCKED the stream key no longer exists", ReplyKind.UNBLOCKED),
    ("UNBLOCKED the consumer group this client was blocked on no longer exists", ReplyKind.UNBLOCKED),
    ("BACKLOG_FULL t.events 3 3", ReplyKind.BACKLOG_FULL),
    ("BUSYGROUP Consumer Group name already exists", ReplyKind.BUSYGROUP),
    ("NOAUTH Authentication required.", ReplyKind.NOAUTH),
    ("WRONGPASS invalid username-password pair or user is disabled.", ReplyKind.WRONGPASS),
    ("LOADING Redis is loading the dataset in memory", ReplyKind.LOADING),
    ("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", ReplyKind.BUSY),
    ("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", ReplyKind.MASTERDOWN),
    ("READONLY You can't write against a read only replica.", ReplyKind.READONLY),
    ("TRYAGAIN Multiple keys request during rehashing of slot", ReplyKind.TRYAGAIN),
    ("CLUSTERDOWN The cluster is down", ReplyKind.CLUSTERDOWN),
    ("OOM command not allowed when used memory > 'maxmemory'.", ReplyKind.OOM),
    ("ERR unknown command 'XFOO'", ReplyKind.OTHER),
    ("WRONGTYPE Operation against a key holding the wrong kind of value", ReplyKind.OTHER),
    ("BUSYKEY Target key name already exists.", ReplyKind.OTHER),  # a code starting like BUSY is not BUSY
])
def test_reply_kind_of_text_and_of_the_redis_py_exception(reply, kind):
    assert reply_kind(reply) is kind
    assert reply_kind(redis_py(reply)) is kind  # also when redis-py moved the code out of the message


def test_the_code_decides_not_a_word_in_the_message():
    assert reply_kind("BACKLOG_FULL x.NOGROUP 3 3") is ReplyKind.BACKLOG_FULL
    assert reply_kind("BUSYGROUP Consumer Group name already exists") is not ReplyKind.BUSY
    assert reply_kind("") is ReplyKind.OTHER
    assert reply_kind("NOAUTH\r\n") is ReplyKind.NOAUTH  # a raw reply read off a socket


def test_kind_families():
    transient = {k for k in ReplyKind if k.transient}
    assert transient == {ReplyKind.LOADING, ReplyKind.BUSY, ReplyKind.MASTERDOWN, ReplyKind.READONLY,
                         ReplyKind.TRYAGAIN, ReplyKind.CLUSTERDOWN, ReplyKind.OOM}
    assert {k for k in ReplyKind if k.auth} == {ReplyKind.NOAUTH, ReplyKind.WRONGPASS}
    assert {k for k in ReplyKind if k.missing} == {ReplyKind.NOGROUP, ReplyKind.NO_SUCH_KEY}


async def test_real_redis_replies_are_recognised(redis_server, uniq):
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    s = f"{uniq}.replies"
    try:
        with pytest.raises(rexc.ResponseError) as exc:
            await r.xinfo_groups(s)
        assert reply_kind(exc.value) is ReplyKind.NO_SUCH_KEY
        with pytest.raises(rexc.ResponseError) as exc:
            await r.xgroup_setid(s, "g", "0")
        assert reply_kind(exc.value) is ReplyKind.NO_SUCH_KEY
        await r.xgroup_create(s, "g", "$", mkstream=True)
        with pytest.raises(rexc.ResponseError) as exc:
            await r.xgroup_create(s, "g", "$", mkstream=True)
        assert reply_kind(exc.value) is ReplyKind.BUSYGROUP
        with pytest.raises(rexc.ResponseError) as exc:
            await r.xreadgroup("nope", "c", {s: ">"})
        assert reply_kind(exc.value) is ReplyKind.NOGROUP

        blocked = asyncio.create_task(r.xreadgroup("g", "c", {s: ">"}, block=10_000))
        for _ in range(500):  # until Redis shows the read blocked
            if any(c.get("cmd") == "xreadgroup" and "b" in c.get("flags", "") for c in await r.client_list()):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the XREADGROUP never blocked")
        await r.delete(s)
        with pytest.raises(rexc.ResponseError) as exc:
            await asyncio.wait_for(blocked, 5)
        assert reply_kind(exc.value) is ReplyKind.UNBLOCKED
    finally:
        await r.aclose()


async def _raising(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize("reply, error, kind", [
    ("BACKLOG_FULL t.events 3 3", BacklogFull, ErrorKind.BACKLOG_FULL),
    ("NOGROUP No such key 's' or consumer group 'g'", NotFound, ErrorKind.NOT_FOUND),
    ("ERR The XGROUP subcommand requires the key to exist.", NotFound, ErrorKind.NOT_FOUND),
    ("BUSY Redis is busy running a script.", Unavailable, ErrorKind.UNAVAILABLE),
    ("READONLY You can't write against a read only replica.", Unavailable, ErrorKind.UNAVAILABLE),
    ("OOM command not allowed when used memory > 'maxmemory'.", Unavailable, ErrorKind.UNAVAILABLE),
    ("LOADING Redis is loading the dataset in memory", Unavailable, ErrorKind.UNAVAILABLE),
    ("UNBLOCKED the stream key no longer exists", FridayError, ErrorKind.INTERNAL),
    ("WRONGTYPE Operation against a key holding the wrong kind of value", FridayError, ErrorKind.INTERNAL),
])
async def test_the_facade_classifies_each_kind_once(reply, error, kind):
    with pytest.raises(error) as exc:
        await _redis_errors(_raising)(redis_py(reply))
    assert exc.value.kind is kind


async def test_the_facade_names_the_stream_of_a_full_backlog_and_the_busy_code():
    with pytest.raises(BacklogFull) as full:
        await _redis_errors(_raising)(redis_py("BACKLOG_FULL t.events 3 3"))
    assert "t.events holds 3 entries, its hard cap is 3" in full.value.message and full.value.details == {"stream": "t.events"}
    with pytest.raises(Unavailable) as busy:
        await _redis_errors(_raising)(redis_py("READONLY You can't write against a read only replica."))
    assert "READONLY" in busy.value.message


@pytest.mark.parametrize("exc", [
    rexc.ClusterError("TTL exhausted."),
    rexc.SlotNotCoveredError("Slot 5461 is not covered by the cluster."),
    rexc.RedisClusterException("Redis Cluster cannot be connected. Please provide at least one reachable node"),
])
async def test_the_cluster_client_giving_up_is_unavailable(exc):
    """redis-py's cluster client raises these (not ConnectionError) while a shard fails over."""
    with pytest.raises(Unavailable) as err:
        await _redis_errors(_raising)(exc)
    assert err.value.kind is ErrorKind.UNAVAILABLE and "retry" in err.value.message


@pytest.mark.parametrize("answer, alive", [
    (b"+PONG\r\n", True),
    (b"-NOAUTH Authentication required.\r\n", True),  # a Redis that wants a password is there
    (b"-ERR unknown command\r\n", False),
    (b"", False),
])
def test_embedded_socket_probe_reads_the_reply_kind(tmp_path, answer, alive):
    import socket
    import threading

    from friday_bus.core.embedded import socket_alive

    path = tmp_path / "r.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer_once() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            conn.sendall(answer)

    t = threading.Thread(target=answer_once, daemon=True)
    t.start()
    try:
        assert socket_alive(path) is alive
    finally:
        t.join(5)
        server.close()


@pytest.mark.parametrize("reply, gone", [
    ("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option", True),
    ("UNBLOCKED the stream key no longer exists", True),
    ("UNBLOCKED the consumer group this client was blocked on no longer exists", True),
    ("UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)", False),
    ("UNBLOCKED client unblocked via CLIENT UNBLOCK", False),
    ("ERR The XGROUP subcommand requires the key to exist.", False),
])
def test_vanished_tells_a_deleted_stream_from_a_server_ending_the_wait(reply, gone):
    assert vanished(reply) is gone
