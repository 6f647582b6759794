"""Status against a real Redis: what it reports matches what Redis holds."""

from __future__ import annotations

from .helpers import pub


async def test_status_matches_redis(make_bus, uniq):
    bus = await make_bus({"events": ["workers", "idle"]}, alert_length=3, alert_pending=1, alert_lag=2)
    s = f"{uniq}.events"
    await bus.setup()
    for i in range(5):
        await pub(bus, s, {"i": i})
    await bus.read(s, "workers", "w", count=2)
    st = await bus.stream_status(s)
    info = await bus.redis.xinfo_stream(s)
    assert st.length == info["length"] == 5
    assert st.first_entry_id == info["first-entry"][0] and st.last_entry_id == info["last-entry"][0]
    g = {x.name: x for x in st.groups}
    assert g["workers"].pending == 2 and g["workers"].lag == 3 and [c.name for c in g["workers"].consumers] == ["w"]
    assert g["idle"].lag == 5 and g["idle"].consumers == []
    metrics = {(a.group, a.metric) for a in st.alerts}
    assert {("workers", "backlog"), ("workers", "pending"), ("workers", "lag"), ("idle", "backlog"), ("idle", "no_consumer"),
            ("idle", "lag")} <= metrics
    assert (None, "length") not in metrics
    assert st.oldest_pending_age_ms is not None and st.oldest_pending_age_ms >= 0


async def test_lag_is_counted_when_redis_cannot_tell_it(make_bus, uniq):
    bus = await make_bus({"events": ["workers", "idle"]})
    s = f"{uniq}.events"
    await bus.setup()
    ids = [await pub(bus, s, {"i": i}) for i in range(6)]
    got = await bus.read(s, "workers", "w", count=2)
    assert [d.entry_id for d in got] == ids[:2]
    await bus.redis.xdel(s, ids[3])  # a deletion after both groups' positions: Redis 7 reports their lag as nil
    assert {g["name"]: g["lag"] for g in await bus.redis.xinfo_groups(s)} == {"workers": None, "idle": None}
    st = await bus.stream_status(s)
    g = {x.name: x for x in st.groups}
    real = {name: len(await bus.redis.xrange(s, "(" + g[name].last_delivered_id, "+")) for name in g}
    assert real == {"workers": 3, "idle": 5}
    assert {name: x.lag for name, x in g.items()} == real
