"""gRPC door, issue 12 section 3: rewind into the future, malformed protobuf, explicit zeros."""

from __future__ import annotations

import time

import grpc
import pytest
from friday_bus._proto import eventbus_pb2 as pb
from friday_bus._proto import eventbus_pb2_grpc as pb_grpc

MD = (("authorization", "Bearer all-key"),)
INVALID = grpc.StatusCode.INVALID_ARGUMENT
U64_MAX = 2**64 - 1


@pytest.fixture
async def stub(door):
    async with door.channel() as ch:
        yield pb_grpc.EventBusStub(ch)


async def expect_invalid(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await coro
    assert e.value.code() == INVALID, e.value.details()
    return e.value


def trailing(err: grpc.aio.AioRpcError) -> dict[str, str]:
    return {k: v for k, v in err.trailing_metadata() or ()}


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
