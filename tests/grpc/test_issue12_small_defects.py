"""gRPC door, issue 12 section 3: rewind into the future, malformed protobuf, explicit zeros."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from friday_bus_client._proto import eventbus_pb2 as pb

from .helpers import INVALID, MD, expect_invalid, trailing

U64_MAX = 2**64 - 1


# --------------------------------------------------------------------------- rewind


async def test_rewind_into_the_future_is_refused(door, stub):
    s = door.stream()
    await door.bus.setup()
    last = (await stub.Publish(pb.PublishRequest(stream=s, payload_json='{"i":0}'), metadata=MD)).id
    before = (await door.bus.redis.xinfo_groups(s))[0]["last-delivered-id"]
    err = await expect_invalid(stub.Rewind(pb.RewindRequest(stream=s, group="workers", to_time_ms=U64_MAX), metadata=MD))
    assert err.details().startswith(f"to_time_ms {U64_MAX} is in the future (now is ")
    assert trailing(err)["friday-error-field"] == "to_time_ms"
    beyond = f"{int(time.time() * 1000) + 3_600_000}-0"
    err = await expect_invalid(stub.Rewind(pb.RewindRequest(stream=s, group="workers", to_id=beyond), metadata=MD))
    assert err.details().startswith(f"to_id {beyond} is after the stream's last entry {last}")
    assert (await door.bus.redis.xinfo_groups(s))[0]["last-delivered-id"] == before
    ok = await stub.Rewind(pb.RewindRequest(stream=s, group="workers", to_id="0-0"), metadata=MD)
    assert ok.id == "0-0"


# --------------------------------------------------------------------------- malformed protobuf

METHOD = "/friday.eventbus.v1.EventBus/"
GARBAGE = {
    "garbage": b"\xff\xff\xff\xff",
    "truncated": pb.PublishRequest(stream="abc", payload_json='{"a":1}').SerializeToString()[:-2],
    "bad_utf8": b"\x0a\x02\xc3\x28",  # field 1 (a string) holding invalid UTF-8
}


async def ended_with_error(call) -> pytest.ExceptionInfo[grpc.aio.AioRpcError]:
    """Read a streaming call to its end (bounded), which must be an error status."""

    async def drain() -> None:
        while (await call.read()) is not grpc.aio.EOF:
            pass
        await call

    with pytest.raises(grpc.aio.AioRpcError) as e:
        await asyncio.wait_for(drain(), 10)
    return e


def no_traceback_logged(caplog) -> None:
    for r in caplog.records:
        text = r.getMessage()
        assert r.exc_info is None and "Traceback" not in text and "Unexpected" not in text, (r.name, text)


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize("method,type_name", [
    ("Publish", "PublishRequest"), ("Rewind", "RewindRequest"), ("Status", "StatusRequest"),
])
async def test_malformed_unary_request_is_invalid_argument(door, caplog, raw, method, type_name):
    caplog.set_level("DEBUG")
    async with door.channel() as ch:
        call = ch.unary_unary(METHOD + method, request_serializer=None, response_deserializer=None)
        err = await expect_invalid(call(raw, metadata=MD))
    assert err.details().startswith(f"the request is not a valid friday.eventbus.v1.{type_name} message: "), err.details()
    assert trailing(err)["friday-error-kind"] == "invalid_argument"
    no_traceback_logged(caplog)


async def test_malformed_request_of_a_server_streaming_call(door, caplog):
    caplog.set_level("DEBUG")
    async with door.channel() as ch:
        call = ch.unary_stream(METHOD + "SubscribeChannel", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as e:
            async for _ in call(GARBAGE["bad_utf8"], metadata=MD):
                pass
    assert e.value.code() == INVALID
    assert e.value.details().startswith("the request is not a valid friday.eventbus.v1.SubscribeChannelRequest message: ")
    no_traceback_logged(caplog)


async def test_a_garbage_message_inside_a_subscribe_stream(door, caplog):
    caplog.set_level("DEBUG")
    s = door.stream()
    await door.bus.setup()
    start = pb.SubscribeRequest(start=pb.SubscribeStart(stream=s, group="workers", consumer="c1", max_in_flight=5))
    async with door.channel() as ch:
        call = ch.stream_stream(METHOD + "Subscribe", request_serializer=None, response_deserializer=None)(metadata=MD)
        await call.write(start.SerializeToString())
        first = pb.SubscribeResponse.FromString(await call.read())
        assert first.WhichOneof("kind") == "subscribed"
        await call.write(GARBAGE["garbage"])
        e = await ended_with_error(call)
    assert e.value.code() == INVALID, e.value.details()
    assert e.value.details().startswith("the request is not a valid friday.eventbus.v1.SubscribeRequest message: ")
    no_traceback_logged(caplog)


async def test_a_garbage_first_message_of_a_subscribe_or_publish_stream(door, caplog):
    caplog.set_level("DEBUG")
    async with door.channel() as ch:
        for method, type_name in (("Subscribe", "SubscribeRequest"), ("PublishStream", "PublishStreamRequest")):
            call = ch.stream_stream(METHOD + method, request_serializer=None, response_deserializer=None)(metadata=MD)
            await call.write(GARBAGE["truncated"])
            e = await ended_with_error(call)
            assert e.value.code() == INVALID, e.value.details()
            assert e.value.details().startswith(f"the request is not a valid friday.eventbus.v1.{type_name} message: ")
    no_traceback_logged(caplog)


async def test_a_garbage_message_inside_a_publish_stream_after_good_ones(door, caplog):
    caplog.set_level("DEBUG")
    s = door.stream()
    good = pb.PublishStreamRequest(ref=1, event=pb.PublishRequest(stream=s, payload_json='{"i":1}'))
    async with door.channel() as ch:
        call = ch.stream_stream(METHOD + "PublishStream", request_serializer=None, response_deserializer=None)(metadata=MD)
        await call.write(good.SerializeToString())
        answer = pb.PublishStreamResponse.FromString(await call.read())
        assert answer.ref == 1 and answer.result.id
        await call.write(b"\x12\x04\x0a\x02\xc3\x28")  # event.stream holding invalid UTF-8
        e = await ended_with_error(call)
    assert e.value.code() == INVALID, e.value.details()
    assert "friday.eventbus.v1.PublishStreamRequest" in e.value.details()
    no_traceback_logged(caplog)


# --------------------------------------------------------------------------- defaults: unset vs explicit 0


async def test_explicit_zero_max_in_flight_is_refused_unset_is_the_default(door, stub):
    s = door.stream()
    await door.bus.setup()
    call = stub.Subscribe(metadata=MD)
    await call.write(pb.SubscribeRequest(start=pb.SubscribeStart(stream=s, group="workers", consumer="c", max_in_flight=0)))
    e = await ended_with_error(call)
    assert e.value.code() == INVALID
    assert e.value.details() == "max_in_flight must be between 1 and 1000 (got 0)"
    assert trailing(e.value)["friday-error-field"] == "max_in_flight"
    call = stub.Subscribe(metadata=MD)
    await call.write(pb.SubscribeRequest(start=pb.SubscribeStart(stream=s, group="workers", consumer="c")))
    first = await asyncio.wait_for(call.read(), 10)
    assert first.subscribed.max_in_flight == 10
    call.cancel()


async def test_explicit_zero_dead_letter_count_is_refused_unset_is_the_default(door, stub):
    s = door.stream()
    await door.bus.setup()
    err = await expect_invalid(stub.ListDeadLetters(pb.ListDeadLettersRequest(stream=s, count=0), metadata=MD))
    assert err.details() == "count must be between 1 and 1000 (got 0)"
    assert trailing(err)["friday-error-field"] == "count"
    assert (await stub.ListDeadLetters(pb.ListDeadLettersRequest(stream=s), metadata=MD)).entries == []


async def test_explicit_empty_group_start_is_refused_unset_is_new(door, stub):
    s = door.stream()
    await stub.Publish(pb.PublishRequest(stream=s, payload_json='{"i":0}'), metadata=MD)
    err = await expect_invalid(stub.CreateGroup(pb.CreateGroupRequest(stream=s, group="g", start=""), metadata=MD))
    assert trailing(err)["friday-error-field"] == "start"
    assert (await stub.CreateGroup(pb.CreateGroupRequest(stream=s, group="g"), metadata=MD)).created
    info = {g["name"]: g for g in await door.bus.redis.xinfo_groups(s)}
    assert info["g"]["lag"] == 0  # created at the end: "new"


async def test_the_client_sends_unset_when_the_caller_gives_nothing(door, monkeypatch):
    from friday_bus.grpc_api import servicer

    monkeypatch.setattr(servicer, "DEFAULT_MAX_IN_FLIGHT", 3)  # the sidecar's default decides, not the client's
    monkeypatch.setattr(servicer, "DEFAULT_DLQ_LIST_COUNT", 1)
    c = door.client()
    s = door.stream()
    await door.bus.setup()
    for i in range(5):
        await c.publish(s, {"i": i})
    async with c.subscribe(s, "workers", "w1") as sub:
        async for _ in sub:
            break  # the first read (count = the call's max_in_flight) is done
        assert (await door.bus.redis.xpending(s, "workers"))["pending"] == 3
    with pytest.raises(Exception, match=r"max_in_flight must be between 1 and 1000 \(got 0\)"):
        async with c.subscribe(s, "workers", "w2", max_in_flight=0) as sub:
            async for _ in sub:
                break
    dead = await door.bus.read(s, "workers", "w3", count=2)
    for d in dead:
        await door.bus.redis.xadd(door.bus.keys.dlq(s), {"i": str(d.payload["i"])})  # two dead letters
    assert len(await c.list_dead_letters(s)) == 1
    assert len(await c.list_dead_letters(s, count=2)) == 2
    with pytest.raises(Exception, match=r"count must be between 1 and 1000 \(got 0\)"):
        await c.list_dead_letters(s, count=0)
