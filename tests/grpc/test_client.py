"""The Python client over the in-process gRPC door: typed results, channels, admin, TLS."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from friday_bus.core import PublishRequest
from friday_bus_client import Conflict, Event, FridayClient, InvalidArgument, NotFound, Unavailable

ODD = {
    "int": 3, "big": 2**63 + 7, "neg": -12, "float": 1.5, "whole_float": 2.0, "tiny": 1e-300, "bool": True,
    "false": False, "null": None, "text": "héllo \u2603 \x01", "empty": "", "numeric_text": "42", "nested": {"a": [1, 2.5, None, {"b": False}]},
    "list": [], "obj": {},
}


async def test_lossless_types_roundtrip(door):
    c = door.client()
    s = door.stream()
    await c.publish(s, ODD, source="agent", correlation_id="c-1", idempotency_key="k-1")
    async with c.subscribe(s, "workers", "w1") as sub:
        async for d in sub:
            assert d.payload == ODD
            assert {k: type(v) for k, v in d.payload.items()} == {k: type(v) for k, v in ODD.items()}
            assert (d.metadata.source, d.metadata.correlation_id, d.metadata.event_id) == ("agent", "c-1", "k-1")
            assert d.metadata.encoding == "friday" and d.metadata.published_at_ms
            await d.ack()
            break


async def test_publish_batch_and_idempotency(door):
    c = door.client()
    s = door.stream()
    rs = await c.publish_batch([Event(s, {"i": 1}), {"stream": s, "payload": {"i": 2}, "idempotency_key": "once"}])
    assert [r.kind for r in rs] == ["stream", "stream"] and all(r.entry_id for r in rs)
    again = await c.publish(s, {"i": 2}, idempotency_key="once")
    assert again.duplicate and again.entry_id == rs[1].entry_id
    assert int(await door.bus.redis.xlen(s)) == 2
    with pytest.raises(InvalidArgument, match=r"events\[1\]"):
        await c.publish_batch([Event(s, {"ok": 1}), Event(s, {"_friday_x": 1})])
    assert int(await door.bus.redis.xlen(s)) == 2


async def test_channels(door):
    c = door.client()
    ch = f"{door.uniq}.info"
    received: asyncio.Queue = asyncio.Queue()

    async def listen():
        async for m in c.subscribe_channel(ch):
            await received.put(m)

    task = asyncio.create_task(listen())
    try:
        # channels are at-most-once: publish markers until the subscription is live
        while (await c.publish_info(ch, {"marker": True})).receivers == 0:
            await asyncio.sleep(0.01)
        r = await c.publish(ch, {"n": 1, "f": 1.0}, source="s")
        assert r.kind == "channel" and r.entry_id is None and r.receivers == 1
        while True:
            m = await received.get()
            if m.payload.get("marker"):
                continue
            assert m.channel == ch and m.payload == {"n": 1, "f": 1.0} and type(m.payload["f"]) is float
            assert m.meta.source == "s"
            break
        # the core's message: what is wrong and what to do instead
        with pytest.raises(NotFound, match="unknown channel .*critical stream: publish it as an event"):
            await c.publish_info(door.stream(), {"a": 1})
        with pytest.raises(NotFound):
            async for _ in c.subscribe_channel("no.such.channel"):
                pass
    finally:
        task.cancel()


async def test_admin_calls(start_door):
    d = await start_door(max_deliveries=1)
    c = d.client()
    s = d.stream()
    assert await c.create_group(s, "g2", "all") is True
    assert await c.create_group(s, "g2") is False
    assert (s, "g2") in await c.list_groups(s)
    streams = await c.list_streams()
    assert [x.name for x in streams] == [s] and set(streams[0].groups) == {"workers", "g2"}
    e1 = (await c.publish(s, {"n": 1})).entry_id
    [dv] = await d.bus.read(s, "g2", "c1")
    r = await c.nack(s, "g2", dv.entry_id, "bad")
    assert r.outcome == "dead_lettered" and r.dead_letter_id
    [dl] = await c.list_dead_letters(s)
    assert dl.original_id == e1 and dl.payload == {"n": 1} and dl.reason == "bad" and dl.group == "g2"
    [rep] = await c.replay_dead_letters(s)
    assert rep.dlq_id == dl.dlq_id and rep.new_entry_id
    assert await c.list_dead_letters(s) == []
    with pytest.raises(InvalidArgument, match="all=true"):
        await c.replay_dead_letters(s, [])
    new_id = await c.rewind(s, "g2", to_id="0-0")
    assert new_id == "0-0"
    [again, replayed] = await d.bus.read(s, "g2", "c1", count=10)
    assert again.entry_id == e1 and replayed.entry_id == rep.new_entry_id
    with pytest.raises(Conflict, match="pending"):
        await c.destroy_group(s, "g2")
    assert await c.destroy_group(s, "g2", force=True) == 2
    st = await c.status([s])
    [ss] = st.streams
    assert ss.name == s and ss.length == 2 and [g.name for g in ss.groups] == ["workers"]
    assert st.redis_version and await c.ack(s, "workers", ["1-0"]) == 0


async def test_unary_ack_and_nack(door):
    c = door.client()
    s = door.stream()
    await door.bus.publish(PublishRequest(s, {"a": 1}))
    [dv] = await door.bus.read(s, "workers", "c1")
    r = await c.nack(s, "workers", dv.entry_id, "later")
    assert r.outcome == "retry" and r.retry_at_ms
    assert await c.ack(s, "workers", [dv.entry_id]) == 1


async def test_tls(start_door, tmp_path):
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is missing: run `make test`, which installs it (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run,
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    d = await start_door(tls_cert_file=cert, tls_key_file=key)
    c = FridayClient(d.target, api_key="all-key", tls=True, root_certificates=cert.read_bytes())
    try:
        r = await c.publish(d.stream(), {"over": "tls"})
        assert r.entry_id
    finally:
        await c.close()
    plain = FridayClient(d.target, api_key="all-key", retries=0)
    try:
        with pytest.raises(Unavailable):  # a plaintext client cannot talk to the TLS port
            await plain.publish(d.stream(), {"a": 1})
    finally:
        await plain.close()


async def test_waiting_for_a_delivery_can_be_cancelled_without_losing_the_subscription(door):
    c = door.client()
    s = door.stream()
    async with c.subscribe(s, "workers", "w1") as sub:
        await sub.wait_subscribed()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(sub), 0.05)  # nothing published yet
        await c.publish(s, {"late": True})
        d = await anext(sub)
        assert d.payload == {"late": True}
        await d.ack()
    with pytest.raises(StopAsyncIteration):
        await anext(sub)
