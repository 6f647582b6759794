"""Bad inputs → INVALID_ARGUMENT with a message that says what to fix, and nothing written.
Each core error kind maps to its status code through the one interceptor."""

from __future__ import annotations

import json

import grpc
import pytest
from friday_bus_client._proto import eventbus_pb2 as pb
from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc

from tests.conftest import RedisServer

from .helpers import INVALID, MD, expect, trailing

BAD_NAMES = ["a*b", "a{b}", "a:b", "a\x00b", "x" * 10_240, ""]
BAD_CONSUMERS = ["a*b", "a{b}", "a\x00b", "x" * 10_240, ""]
BAD_IDS = ["$", ">", "*", "18446744073709551616-0", "0-18446744073709551616", "abc", "1-2-3", ""]


async def dbsize(door) -> int:
    return int(await door.bus.redis.dbsize())


async def drain(call) -> list[str]:
    kinds = []
    try:
        while (msg := await call.read()) is not grpc.aio.EOF:
            kinds.append(msg.WhichOneof("kind"))
    except grpc.aio.AioRpcError:
        pass
    return kinds


async def subscribe_code(stub, start: pb.SubscribeStart | None, extra: list[pb.SubscribeRequest] = ()):
    call = stub.Subscribe(metadata=MD)
    if start is not None:
        await call.write(pb.SubscribeRequest(start=start))
    for m in extra:
        await call.write(m)
    await call.done_writing()
    return call


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
async def test_bad_stream_names_write_nothing(door, stub, name):
    s, before = door.stream(), await dbsize(door)
    await expect(INVALID, stub.Publish(pb.PublishRequest(stream=name, payload_json='{"a":1}'), metadata=MD))
    err = await expect(INVALID, stub.PublishBatch(pb.PublishBatchRequest(events=[
        pb.PublishRequest(stream=s, payload_json='{"a":1}'), pb.PublishRequest(stream=name, payload_json='{"a":1}')]),
        metadata=MD))
    assert "events[1]" in err.details()
    await expect(INVALID, stub.CreateGroup(pb.CreateGroupRequest(stream=name, group="g"), metadata=MD))
    await expect(INVALID, stub.Ack(pb.AckRequest(stream=name, group="workers", ids=["1-0"]), metadata=MD))
    await expect(INVALID, stub.Status(pb.StatusRequest(streams=[name]), metadata=MD))
    await expect(INVALID, stub.ListDeadLetters(pb.ListDeadLettersRequest(stream=name), metadata=MD))
    call = await subscribe_code(stub, pb.SubscribeStart(stream=name, group="workers", consumer="c"))
    assert await call.code() == INVALID
    assert await dbsize(door) == before


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
async def test_bad_group_names_write_nothing(door, stub, name):
    s, before = door.stream(), await dbsize(door)
    err = await expect(INVALID, stub.CreateGroup(pb.CreateGroupRequest(stream=s, group=name), metadata=MD))
    assert "A-Z a-z 0-9" in err.details() and trailing(err)["friday-error-field"] == "group"
    await expect(INVALID, stub.Ack(pb.AckRequest(stream=s, group=name, ids=["1-0"]), metadata=MD))
    await expect(INVALID, stub.Nack(pb.NackRequest(stream=s, group=name, id="1-0", reason="r"), metadata=MD))
    await expect(INVALID, stub.Rewind(pb.RewindRequest(stream=s, group=name, to_id="0-0"), metadata=MD))
    await expect(INVALID, stub.DestroyGroup(pb.DestroyGroupRequest(stream=s, group=name), metadata=MD))
    call = await subscribe_code(stub, pb.SubscribeStart(stream=s, group=name, consumer="c"))
    assert await call.code() == INVALID
    assert await dbsize(door) == before


@pytest.mark.parametrize("name", BAD_CONSUMERS, ids=repr)
async def test_bad_consumer_names_write_nothing(door, stub, name):
    before = await dbsize(door)
    call = await subscribe_code(stub, pb.SubscribeStart(stream=door.stream(), group="workers", consumer=name))
    assert await call.code() == INVALID
    assert "consumer" in await call.details()
    assert await dbsize(door) == before
    assert await door.bus.redis.xinfo_consumers(door.stream(), "workers") == []


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
async def test_bad_channel_names(door, stub, name):
    before = await dbsize(door)
    await expect(INVALID, stub.PublishInfo(pb.PublishInfoRequest(channel=name, payload_json='{"a":1}'), metadata=MD))
    call = stub.SubscribeChannel(pb.SubscribeChannelRequest(channels=[name]), metadata=MD)
    assert await call.code() == INVALID
    assert await dbsize(door) == before


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
async def test_bad_entry_ids(door, stub, bad):
    s = door.stream()
    await door.bus.publish(__import__("friday_bus.core", fromlist=["x"]).PublishRequest(s, {"keep": 1}))
    before = await dbsize(door)
    group_before = await door.bus.redis.xinfo_groups(s)
    await expect(INVALID, stub.Ack(pb.AckRequest(stream=s, group="workers", ids=["1-0", bad]), metadata=MD))
    await expect(INVALID, stub.Nack(pb.NackRequest(stream=s, group="workers", id=bad, reason="r"), metadata=MD))
    await expect(INVALID, stub.Rewind(pb.RewindRequest(stream=s, group="workers", to_id=bad), metadata=MD))
    if bad:  # an empty start means "new"
        await expect(INVALID, stub.CreateGroup(pb.CreateGroupRequest(stream=s, group="g2", start=bad), metadata=MD))
    await expect(INVALID, stub.ListDeadLetters(pb.ListDeadLettersRequest(stream=s, after=bad), metadata=MD))
    await expect(INVALID, stub.ReplayDeadLetters(pb.ReplayDeadLettersRequest(stream=s, ids=[bad]), metadata=MD))
    after = await door.bus.redis.xinfo_groups(s)
    assert [(g["name"], g["last-delivered-id"]) for g in after] == [(g["name"], g["last-delivered-id"]) for g in group_before]
    assert await dbsize(door) == before
    # inside a Subscribe call a bad ack is answered with an error and the call goes on
    call = stub.Subscribe(metadata=MD)
    await call.write(pb.SubscribeRequest(start=pb.SubscribeStart(stream=s, group="workers", consumer="c1", max_in_flight=1)))
    assert (await call.read()).WhichOneof("kind") == "subscribed"
    await call.write(pb.SubscribeRequest(ack=pb.SubscribeAck(ref=7, ids=[bad])))
    got = await call.read()
    while got.WhichOneof("kind") == "deliveries":
        got = await call.read()
    assert got.ack_result.ref == 7 and got.ack_result.error.kind == "invalid_argument"
    call.cancel()
    assert (await door.bus.redis.xpending(s, "workers"))["pending"] == 1  # delivered, not acked by the bad ack


async def test_bad_ids_do_not_move_groups(door, stub):
    s = door.stream()
    before = {g["name"]: g["last-delivered-id"] for g in await door.bus.redis.xinfo_groups(s)}
    for bad in BAD_IDS:
        await expect(INVALID, stub.Rewind(pb.RewindRequest(stream=s, group="workers", to_id=bad), metadata=MD))
    assert {g["name"]: g["last-delivered-id"] for g in await door.bus.redis.xinfo_groups(s)} == before


# --------------------------------------------------------------------------- counts


async def test_huge_counts(door, stub):
    s, before = door.stream(), await dbsize(door)
    for count in (1001, 2**32 - 1):
        err = await expect(INVALID, stub.ListDeadLetters(pb.ListDeadLettersRequest(stream=s, count=count), metadata=MD))
        assert "count must be between 1 and 1000" in err.details()
        call = await subscribe_code(stub, pb.SubscribeStart(stream=s, group="workers", consumer="c", max_in_flight=count))
        assert await call.code() == INVALID and "max_in_flight" in await call.details()
    many = [pb.PublishRequest(stream=s, payload_json='{"a":1}')] * 1001
    err = await expect(INVALID, stub.PublishBatch(pb.PublishBatchRequest(events=many), metadata=MD))
    assert "at most 1000" in err.details()
    await expect(INVALID, stub.PublishBatch(pb.PublishBatchRequest(events=[]), metadata=MD))
    await expect(INVALID, stub.Ack(pb.AckRequest(stream=s, group="workers", ids=["1-0"] * 1001), metadata=MD))
    await expect(INVALID, stub.Ack(pb.AckRequest(stream=s, group="workers", ids=[]), metadata=MD))
    assert await dbsize(door) == before


# --------------------------------------------------------------------------- payloads


@pytest.mark.parametrize(
    "payload_json",
    ["", "not json", "[1,2]", '"text"', "3", "null", '{"a": NaN}', '{"a": Infinity}', '{"_friday_ts": 1}', '{"": 1}',
     "[" * 100_000 + "]" * 100_000, '{"a":1} trailing'],
    ids=lambda v: repr(v[:30]),
)
async def test_bad_payloads_write_nothing(door, stub, payload_json):
    before = await dbsize(door)
    err = await expect(INVALID, stub.Publish(pb.PublishRequest(stream=door.stream(), payload_json=payload_json), metadata=MD))
    assert trailing(err)["friday-error-kind"] == "invalid_argument"
    assert await dbsize(door) == before


async def test_oversize_payload_writes_nothing(start_door):
    d = await start_door(max_payload_bytes=1000)
    before = int(await d.bus.redis.dbsize())
    async with d.channel() as ch:
        stub = pb_grpc.EventBusStub(ch)
        big = json.dumps({"blob": "x" * 1000})
        err = await expect(INVALID, stub.Publish(pb.PublishRequest(stream=d.stream(), payload_json=big), metadata=MD))
        assert "1000-byte limit" in err.details()
        ok = json.dumps({"blob": "x" * 900})
        await expect(INVALID, stub.PublishBatch(pb.PublishBatchRequest(events=[
            pb.PublishRequest(stream=d.stream(), payload_json=ok), pb.PublishRequest(stream=d.stream(), payload_json=big)]),
            metadata=MD))
        # beyond the transport cap gRPC itself refuses the message before the sidecar sees it
        huge = json.dumps({"blob": "x" * (17 * 1024 * 1024)})
        await expect(grpc.StatusCode.RESOURCE_EXHAUSTED, stub.Publish(pb.PublishRequest(stream=d.stream(), payload_json=huge),
                                                                       metadata=MD))
    assert int(await d.bus.redis.dbsize()) == before


async def test_bad_metadata_values(door, stub):
    before = await dbsize(door)
    for field, value in (("idempotency_key", "x" * 300), ("source", "a\x00b"), ("correlation_id", "")):
        req = pb.PublishRequest(stream=door.stream(), payload_json='{"a":1}')
        setattr(req, field, value)
        await expect(INVALID, stub.Publish(req, metadata=MD))
    assert await dbsize(door) == before


# --------------------------------------------------------------------------- subscribe protocol


async def test_subscribe_protocol_errors(door, stub):
    call = await subscribe_code(stub, None)
    assert await call.code() == INVALID and "first Subscribe message must be `start`" in await call.details()
    call = await subscribe_code(stub, None, [pb.SubscribeRequest(ack=pb.SubscribeAck(ids=["1-0"]))])
    assert await call.code() == INVALID
    start = pb.SubscribeStart(stream=door.stream(), group="workers", consumer="c")
    call = stub.Subscribe(metadata=MD)
    await call.write(pb.SubscribeRequest(start=start))
    await call.write(pb.SubscribeRequest(start=start))
    kinds = await drain(call)  # gRPC gives the status once the messages before it are read
    assert kinds == ["subscribed"]
    assert await call.code() == INVALID and "only once" in await call.details()


# --------------------------------------------------------------------------- other kinds


async def test_error_kinds_map_to_status_codes(start_door, stub, door):
    s = door.stream()
    err = await expect(grpc.StatusCode.NOT_FOUND, stub.Ack(pb.AckRequest(stream=s, group="nope", ids=["1-0"]), metadata=MD))
    assert trailing(err) == {"friday-error-kind": "not_found", "friday-retriable": "false", "friday-error-field": "group"}
    assert "create it" in err.details()
    await expect(grpc.StatusCode.NOT_FOUND, stub.PublishInfo(pb.PublishInfoRequest(channel=s, payload_json="{}"), metadata=MD))
    await expect(grpc.StatusCode.NOT_FOUND, stub.Nack(pb.NackRequest(stream=s, group="workers", id="1-0", reason="r"), metadata=MD))
    # conflict: a group holding pending entries
    await stub.Publish(pb.PublishRequest(stream=s, payload_json='{"a":1}'), metadata=MD)
    await door.bus.read(s, "workers", "c1", count=1)
    err = await expect(grpc.StatusCode.FAILED_PRECONDITION, stub.DestroyGroup(pb.DestroyGroupRequest(stream=s, group="workers"),
                                                                            metadata=MD))
    assert "pending" in err.details() and trailing(err)["friday-error-kind"] == "conflict"
    # a Redis error that is none of the known kinds: INTERNAL, no trace
    odd = door.stream("odd")
    await door.bus.redis.set(odd, "a string, not a stream")
    err = await expect(grpc.StatusCode.INTERNAL, stub.Publish(pb.PublishRequest(stream=odd, payload_json='{"a":1}'), metadata=MD))
    assert "WRONGTYPE" in err.details()


async def test_backlog_full_is_resource_exhausted(start_door):
    d = await start_door({"capped": {"groups": ["workers"], "retention": 1, "max_backlog": 2}})
    s = d.stream("capped")
    c = d.client()
    for i in range(2):
        await c.publish(s, {"i": i})
    from friday_bus_client import BacklogFull

    with pytest.raises(BacklogFull) as e:
        await c.publish(s, {"i": 2})
    assert e.value.grpc_code == grpc.StatusCode.RESOURCE_EXHAUSTED and e.value.retriable
    assert int(await d.bus.redis.xlen(s)) == 2


async def test_redis_down_is_unavailable(start_door, tmp_path):
    redis = RedisServer(tmp_path / "own-redis").start()
    try:
        d = await start_door(redis_url=redis.url)
        c = d.client(retries=0)
        await c.publish(d.stream(), {"a": 1})
        redis.stop()
        from friday_bus_client import Unavailable

        with pytest.raises(Unavailable) as e:
            await c.publish(d.stream(), {"a": 2})
        assert e.value.grpc_code == grpc.StatusCode.UNAVAILABLE and "retry" in str(e.value)
    finally:
        redis.stop()
