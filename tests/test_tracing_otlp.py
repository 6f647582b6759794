"""Spans when tracing is on (issue 10, item 2): a real `friday serve` with the `otel` extra and the
standard OTEL_* variables exports over OTLP/HTTP to a real receiver in this test (tests/otlp_receiver.py:
an HTTP server on a free port taking POST /v1/traces, decoded with opentelemetry-proto). The spans,
their parents, links and attributes are checked; and the traceparent consumers get is the publish span's."""

from __future__ import annotations

import asyncio

import pytest
from friday_bus.core import tracing
from friday_bus_client import FridayClient

from .otlp_receiver import CLIENT, CONSUMER, PRODUCER, Receiver

TP_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TP_SPAN = "00f067aa0ba902b7"
TP = f"00-{TP_TRACE}-{TP_SPAN}-01"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def traced_sidecar(start_sidecar, receiver, monkeypatch):
    for k in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "friday-test")
    return start_sidecar()


def test_the_switch():
    assert not tracing.requested({})
    assert tracing.requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"})
    assert tracing.requested({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces"})
    assert tracing.requested({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.requested({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert not tracing.requested({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"})
    assert tracing.from_env({}) is None


def _read(api, stream, n=1):
    r = api.post(f"/api/v1/streams/{stream}/groups/workers/read", json={"consumer": "w", "count": n, "block_ms": 3000})
    assert r.status_code == 200, r.text
    return r.json()["deliveries"]


def test_spans_publish_deliver_nack_dead_letter_ack(traced_sidecar, receiver, uniq):
    car = traced_sidecar
    stream = f"{uniq}.traced"
    with car.client() as api:
        assert api.post(f"/api/v1/streams/{stream}/groups", json={"group": "workers", "start": "all"}).status_code == 201
        r = api.post("/api/v1/events/publish", json={"stream": stream, "payload": {"n": 1}, "correlation_id": "c-1"},
                     headers={"traceparent": TP, "tracestate": "congo=t61"})
        assert r.status_code == 200, r.text
        entry_id = r.json()["id"]
        # Delivered, nacked until dead-lettered (FRIDAY_MAX_DELIVERIES=3 in the test sidecar)
        stored = []
        for attempt in range(1, 4):
            [d] = _read(api, stream)
            assert d["id"] == entry_id and d["delivery_count"] == attempt
            stored.append(d["metadata"]["traceparent"])
            out = api.post(f"/api/v1/streams/{stream}/groups/workers/nack", json={"id": entry_id, "reason": f"no {attempt}"})
            assert out.status_code == 200, out.text
        assert out.json()["outcome"] == "dead_lettered"
        dlq_id = out.json()["dead_letter_id"]
        # A second event, without a traceparent: a new trace starts at the sidecar's publish span.
        r = api.post("/api/v1/events/publish", json={"stream": stream, "payload": {"n": 2}})
        second = r.json()["id"]
        [d2] = _read(api, stream)
        assert d2["id"] == second
        assert api.post(f"/api/v1/streams/{stream}/groups/workers/ack", json={"ids": [second]}).json()["acked"] == 1

    # The event stores the publish span's context: same trace, the span id of the sidecar's span.
    assert len(set(stored)) == 1
    _, trace_id, publish_span_id, flags = stored[0].split("-")
    assert trace_id == TP_TRACE and publish_span_id != TP_SPAN and flags == "01"

    [pub] = receiver.wait("publish", lambda s: s["name"] == f"publish {stream}" and s["trace_id"] == TP_TRACE)
    assert (pub["kind"], pub["span_id"], pub["parent"]) == (PRODUCER, publish_span_id, TP_SPAN)
    assert {
        "messaging.system": "redis", "messaging.destination.name": stream, "messaging.operation.type": "publish",
        "messaging.message.id": entry_id, "messaging.message.conversation_id": "c-1",
    }.items() <= pub["attrs"].items()

    receiver.wait("deliver x3", lambda s: s["name"] == f"deliver {stream}" and s["trace_id"] == TP_TRACE
                  and s["attrs"].get("friday.delivery_count") == 3)
    delivers = sorted(receiver.wait("deliver", lambda s: s["name"] == f"deliver {stream}" and s["trace_id"] == TP_TRACE),
                      key=lambda s: s["attrs"]["friday.delivery_count"])
    assert [s["attrs"]["friday.delivery_count"] for s in delivers] == [1, 2, 3]
    for s in delivers:
        assert (s["kind"], s["parent"], s["links"]) == (CONSUMER, publish_span_id, [(TP_TRACE, publish_span_id)])
        assert {"messaging.system": "redis", "messaging.destination.name": stream, "messaging.consumer.group.name": "workers",
                "messaging.message.id": entry_id, "messaging.operation.type": "receive"}.items() <= s["attrs"].items()

    nacks = receiver.wait("nack", lambda s: s["name"] == f"nack {stream}" and s["trace_id"] == TP_TRACE, count=3)
    assert len(nacks) == 3
    by_parent = {s["parent"]: s for s in nacks}
    assert set(by_parent) == {s["span_id"] for s in delivers}  # each nack is a child of its delivery
    for s in nacks:
        assert s["kind"] == CLIENT and s["attrs"]["messaging.operation.type"] == "settle"
    last_nack = by_parent[delivers[-1]["span_id"]]
    assert last_nack["attrs"]["friday.nack.outcome"] == "dead"
    [dead] = receiver.wait("dead_letter", lambda s: s["name"] == f"dead_letter {stream}")
    assert (dead["kind"], dead["trace_id"], dead["parent"]) == (PRODUCER, TP_TRACE, last_nack["span_id"])
    assert dead["attrs"]["friday.dead_letter_id"] == dlq_id and dead["attrs"]["messaging.message.id"] == entry_id

    # The untraced event: a root publish span, its delivery and ack in that trace.
    [pub2] = receiver.wait("publish 2", lambda s: s["name"] == f"publish {stream}" and s["attrs"].get("messaging.message.id") == second)
    assert pub2["parent"] == "" and pub2["trace_id"] != TP_TRACE
    [d2span] = receiver.wait("deliver 2", lambda s: s["name"] == f"deliver {stream}" and s["attrs"]["messaging.message.id"] == second)
    assert (d2span["trace_id"], d2span["parent"]) == (pub2["trace_id"], pub2["span_id"])
    assert d2["metadata"]["traceparent"].startswith(f"00-{pub2['trace_id']}-{pub2['span_id']}-")  # flags: sampled (+ random)
    [ack] = receiver.wait("ack", lambda s: s["name"] == f"ack {stream}")
    assert (ack["kind"], ack["trace_id"], ack["parent"]) == (CLIENT, pub2["trace_id"], d2span["span_id"])
    assert ack["attrs"]["messaging.operation.type"] == "settle" and ack["attrs"]["messaging.message.id"] == second
    assert {r.get("service.name") for r in receiver.resources} == {"friday-test"}


def test_grpc_publish_and_a_refused_event(traced_sidecar, receiver, uniq):
    stream = f"{uniq}.grpc"

    async def go() -> str:
        async with FridayClient(traced_sidecar.grpc_target, api_key=traced_sidecar.api_key) as c:
            await c.create_group(stream, "workers", "all")
            r = await c.publish(stream, {"n": 1}, traceparent=TP)
            async with c.subscribe(stream, "workers", "w") as sub:
                async for d in sub:
                    assert d.metadata.traceparent.split("-")[1] == TP_TRACE
                    assert d.metadata.traceparent.split("-")[2] != TP_SPAN
                    await d.ack()
                    break
            return r.entry_id

    entry_id = asyncio.run(go())
    [pub] = receiver.wait("grpc publish", lambda s: s["name"] == f"publish {stream}")
    assert (pub["trace_id"], pub["parent"], pub["attrs"]["messaging.message.id"]) == (TP_TRACE, TP_SPAN, entry_id)
    receiver.wait("grpc ack", lambda s: s["name"] == f"ack {stream}" and s["trace_id"] == TP_TRACE)
