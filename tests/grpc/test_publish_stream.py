"""PublishStream: in order, per-event errors do not end the call, shutdown answers what it read."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from friday_bus_client import InvalidArgument
from friday_bus_client._proto import eventbus_pb2 as pb
from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc

MD = (("authorization", "Bearer all-key"),)


def req(ref: int, stream: str, payload_json: str) -> pb.PublishStreamRequest:
    return pb.PublishStreamRequest(ref=ref, event=pb.PublishRequest(stream=stream, payload_json=payload_json))


async def test_events_are_written_in_order_and_errors_answered_in_place(door):
    s = door.stream()
    async with door.channel() as ch:
        call = pb_grpc.EventBusStub(ch).PublishStream(metadata=MD)
        payloads = ['{"n":0}', '{"n":1}', "not json", '{"n":3}', '{"_friday_x":1}', '{"n":5}']
        for i, p in enumerate(payloads):
            await call.write(req(i, s, p))
        await call.done_writing()
        answers = []
        while (m := await call.read()) is not grpc.aio.EOF:
            answers.append(m)
        assert await call.code() == grpc.StatusCode.OK
    assert [a.ref for a in answers] == list(range(6))
    kinds = [a.error.kind if a.HasField("error") else "ok" for a in answers]
    assert kinds == ["ok", "ok", "invalid_argument", "ok", "invalid_argument", "ok"]
    entries = await door.bus.redis.xrange(s)
    assert [e[0] for e in entries] == [a.result.id for a in answers if a.HasField("result")]
    assert [e[1]["n"] for e in entries] == ["0", "1", "3", "5"]


async def test_client_publish_uses_the_stream_and_raises_typed_errors(door):
    c = door.client()
    s = door.stream()
    ids = [(await c.publish(s, {"i": i})).entry_id for i in range(20)]
    with pytest.raises(InvalidArgument, match="reserved prefix") as e:
        await c.publish(s, {"_friday_x": 1})
    assert e.value.grpc_code == grpc.StatusCode.INVALID_ARGUMENT
    assert (await c.publish(s, {"after": "error"})).entry_id  # the stream goes on
    concurrent = await asyncio.gather(*(c.publish(s, {"j": j}) for j in range(50)))
    entries = await door.bus.redis.xrange(s)
    assert [e[0] for e in entries[:20]] == ids
    assert [e[1]["j"] for e in entries[21:]] == [str(j) for j in range(50)]  # sent in this order, written in it
    assert all(r.entry_id for r in concurrent)
    unary = door.client(streaming_publish=False)
    assert (await unary.publish(s, {"unary": True})).entry_id


async def test_shutdown_ends_the_publish_stream_with_unavailable(door):
    async with door.channel() as ch:
        call = pb_grpc.EventBusStub(ch).PublishStream(metadata=MD)
        await call.write(req(1, door.stream(), '{"a":1}'))
        assert (await call.read()).ref == 1
        stopping = asyncio.create_task(door.server.stop(60))
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call.read()
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "unanswered" in e.value.details()
        await stopping
