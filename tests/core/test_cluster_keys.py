"""Cluster-safe key names (core/keys.py) and setup's in-place move of keys written under the old names."""

from __future__ import annotations

import time

from friday_bus.core import PublishRequest
from friday_bus.core.keys import Keys
from redis.crc import key_slot


def test_companion_keys_share_their_streams_slot():
    k = Keys("friday:")
    s = "email.received"
    assert k.dlq(s) == "friday:dlq:{email.received}"
    assert k.retry(s, "email-processor") == "friday:retry:{email.received}:email-processor"
    assert k.reasons(s, "g") == "friday:reasons:{email.received}:g"
    assert k.idem(s, "evt-1") == "friday:idem:{email.received}:evt-1"
    assert k.setup == "friday:setup"  # global, untagged
    slot = key_slot(s.encode())
    for key in (k.dlq(s), k.retry(s, "g"), k.reasons(s, "g"), k.idem(s, "a:b{c}")):
        assert key_slot(key.encode()) == slot
    assert k.legacy.dlq(s) == "friday:dlq:email.received"


async def test_setup_moves_old_key_names_in_place(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "max_deliveries": 2, "backoff": {"initial_ms": 1, "max_ms": 1}}})
    s = f"{uniq}.events"
    r = bus.redis
    old = bus.keys.legacy
    await bus.setup()
    # an installation written before issue 8: a dead letter, a due retry with its reason, an idempotency key
    first = await bus.publish(PublishRequest(s, {"n": 1}))
    [d] = await bus.read(s, "workers", "w", count=1)
    await r.xadd(old.dlq(s), {"n": "0", "_friday_dlq_reason": "old reason", "_friday_dlq_original_id": "1-0",
                              "_friday_dlq_group": "workers", "_friday_dlq_deliveries": "5", "_friday_dlq_at": "1"})
    await r.zadd(old.retry(s, "workers"), {d.entry_id: int(time.time() * 1000) - 10})
    await r.hset(old.reasons(s, "workers"), d.entry_id, "old nack")
    await r.set(old.idem(s, "evt-old"), first.entry_id, ex=3600)
    await r.hdel(bus.keys.setup, "key_names")  # as an old sidecar left it

    report = await bus.setup()
    assert report.migrated_keys == 4
    for key in (old.dlq(s), old.retry(s, "workers"), old.reasons(s, "workers"), old.idem(s, "evt-old")):
        assert not await r.exists(key)
    assert 3500 < await r.ttl(bus.keys.idem(s, "evt-old")) <= 3600  # RENAME keeps the TTL
    [dl] = await bus.dlq_list(s)
    assert dl.reason == "old reason" and dl.payload == {"n": "0"}
    dup = await bus.publish(PublishRequest(s, {"n": 1}, event_id="evt-old"))
    assert dup.duplicate and dup.entry_id == first.entry_id
    # the retry scheduled under the old name still fires
    [again] = await bus.read(s, "workers", "w", count=1, block_ms=3000)  # claims within claim_interval_ms
    assert again.entry_id == d.entry_id and again.delivery_count == 2
    # idempotent: nothing left to move
    assert (await bus.setup()).migrated_keys == 0
    await r.hdel(bus.keys.setup, "key_names")
    assert (await bus.setup()).migrated_keys == 0


async def test_both_names_present_are_merged(make_bus, uniq):
    bus = await make_bus()
    s = f"{uniq}.events"
    r = bus.redis
    old = bus.keys.legacy
    await bus.setup()
    await r.zadd(old.retry(s, "workers"), {"1-0": 5, "2-0": 6})
    await r.zadd(bus.keys.retry(s, "workers"), {"2-0": 9})
    await r.xadd(old.dlq(s), {"a": "old"})
    await r.xadd(bus.keys.dlq(s), {"a": "new"})
    await r.set(old.idem(s, "e"), "1-1")
    await r.set(bus.keys.idem(s, "e"), "2-2")
    await r.hdel(bus.keys.setup, "key_names")
    assert (await bus.setup()).migrated_keys == 3
    assert await r.zrange(bus.keys.retry(s, "workers"), 0, -1, withscores=True) == [("1-0", 5.0), ("2-0", 9.0)]
    assert [f["a"] for _, f in await r.xrange(bus.keys.dlq(s))] == ["new", "old"]
    assert await r.get(bus.keys.idem(s, "e")) == "2-2"
    assert not await r.exists(old.retry(s, "workers"), old.dlq(s), old.idem(s, "e"))
