"""W3C trace context over the gRPC door and the Python client (issue 10): call metadata
``traceparent`` / ``tracestate`` on a publish comes back in every delivery's EventMetadata;
the client sends explicit values or the current OpenTelemetry span's; malformed: INVALID_ARGUMENT."""

from __future__ import annotations

import grpc
import pytest
from friday_bus_client import FridayClient, InvalidArgument
from friday_bus_client._proto import eventbus_pb2 as pb
from friday_bus_client.tracing import current_trace_context, trace_metadata
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from .helpers import INVALID, MD, expect

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TS = "congo=t61rcWkgMzE"


async def _take(c: FridayClient, stream: str, n: int):
    out = []
    async with c.subscribe(stream, "workers", "w1") as sub:
        async for d in sub:
            out.append(d)
            await d.ack()
            if len(out) == n:
                return out
    return out


async def test_raw_metadata_single_batch_and_stream(door, stub):
    s = door.stream()
    tmd = MD + (("traceparent", TP), ("tracestate", TS))
    await stub.Publish(pb.PublishRequest(stream=s, payload_json='{"i":0}'), metadata=tmd)
    await stub.PublishBatch(pb.PublishBatchRequest(events=[
        pb.PublishRequest(stream=s, payload_json='{"i":1}'), pb.PublishRequest(stream=s, payload_json='{"i":2}')]),
        metadata=MD + (("traceparent", TP),))
    call = stub.PublishStream(metadata=tmd)
    await call.write(pb.PublishStreamRequest(ref=1, event=pb.PublishRequest(stream=s, payload_json='{"i":3}')))
    assert (await call.read()).HasField("result")
    await call.done_writing()
    await stub.Publish(pb.PublishRequest(stream=s, payload_json='{"i":4}'), metadata=MD)
    got = await _take(door.client(), s, 5)
    assert [(d.payload["i"], d.metadata.traceparent, d.metadata.tracestate) for d in got] == [
        (0, TP, TS), (1, TP, None), (2, TP, None), (3, TP, TS), (4, None, None)]


async def test_raw_metadata_malformed_is_invalid_argument_nothing_written(door, stub):
    s = door.stream()
    for md, field in [((("traceparent", "00-zz"),), "traceparent"),
                      ((("traceparent", "00-" + "0" * 32 + "-00f067aa0ba902b7-01"),), "traceparent"),
                      ((("traceparent", TP), ("tracestate", "x" * 600)), "tracestate")]:
        err = await expect(INVALID, stub.Publish(pb.PublishRequest(stream=s, payload_json='{"a":1}'), metadata=MD + md))
        assert field in err.details()
        await expect(INVALID, stub.PublishBatch(pb.PublishBatchRequest(
            events=[pb.PublishRequest(stream=s, payload_json='{"a":1}')]), metadata=MD + md))
    assert await door.bus.redis.xlen(s) == 0


async def test_client_explicit_and_dead_letter_replay(door):
    c = door.client()
    s = door.stream()
    await c.publish(s, {"i": 0}, traceparent=TP, tracestate=TS)
    await c.publish_batch([{"stream": s, "payload": {"i": 1}}], traceparent=TP)
    await c.publish(s, {"i": 2})
    got = await _take(c, s, 3)
    assert [(d.payload["i"], d.metadata.traceparent, d.metadata.tracestate) for d in got] == [
        (0, TP, TS), (1, TP, None), (2, None, None)]
    with pytest.raises(InvalidArgument) as e:
        await c.publish(s, {"i": 3}, traceparent="nope")
    assert e.value.field == "traceparent"


async def test_client_dead_letter_and_replay_keep_it(start_door):
    door = await start_door({"events": {"groups": ["workers"], "max_deliveries": 1}})
    c = door.client()
    s = door.stream()
    await c.publish(s, {"i": 0}, traceparent=TP)
    async with c.subscribe(s, "workers", "w1") as sub:
        async for d in sub:
            assert (await d.nack("no")).outcome == "dead_lettered"
            break
    [dead] = await c.list_dead_letters(s)
    assert dead.meta.traceparent == TP
    await c.replay_dead_letters(s, [dead.dlq_id])
    [again] = await _take(c, s, 1)
    assert again.metadata.traceparent == TP and again.delivery_count == 1


async def test_client_injects_the_current_opentelemetry_context(door):
    c = door.client()
    s = door.stream()
    assert current_trace_context() is None and trace_metadata() == ()  # no span: nothing sent
    ctx = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=False,
                      trace_flags=TraceFlags(1), trace_state=TraceState([("congo", "t61rcWkgMzE")]))
    with trace.use_span(NonRecordingSpan(ctx)):
        assert current_trace_context() == (TP, TS)
        await c.publish(s, {"i": 0})
        await c.publish_batch([{"stream": s, "payload": {"i": 1}}])
    await c.publish(s, {"i": 2})
    got = await _take(c, s, 3)
    assert [(d.metadata.traceparent, d.metadata.tracestate) for d in got] == [(TP, TS), (TP, TS), (None, None)]


async def test_grpc_status_code_is_invalid_argument(door):
    async with door.channel() as ch:
        from friday_bus_client._proto import eventbus_pb2_grpc as pb_grpc

        stub = pb_grpc.EventBusStub(ch)
        err = await expect(INVALID, stub.Publish(pb.PublishRequest(stream=door.stream(), payload_json='{"a":1}'),
                                                 metadata=MD + (("traceparent", "ff-" + TP[3:]),)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "version ff" in err.details()
