"""Alerts on what matters (issue 12, section 3): a healthy stream that keeps its acknowledged
entries (the safe trim keeps `retention` of them by design) raises nothing; a group's
unacknowledged backlog (lag + pending) does, against FRIDAY_ALERT_LENGTH and the retention."""

from __future__ import annotations

from friday_bus.core.status import ALERT_METRICS, alert_checks, alerts, backlog

from .helpers import pub


async def test_a_healthy_stream_longer_than_the_thresholds_raises_nothing(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["workers"], "retention": 5}}, alert_length=3)
    s = f"{uniq}.events"
    await bus.setup()
    for i in range(12):
        await pub(bus, s, {"i": i})
    got = await bus.read(s, "workers", "w", count=100)
    await bus.ack(s, "workers", [d.entry_id for d in got])
    st = await bus.stream_status(s)
    assert st.length == 12  # over alert_length and over retention (not trimmed yet): every entry acked
    assert st.alerts == []


async def test_the_unacknowledged_backlog_of_a_group_is_alerted(make_bus, uniq):
    bus = await make_bus({"events": {"groups": ["fast", "slow"], "retention": 5}}, alert_length=3, alert_pending=100,
                         alert_lag=100)
    s = f"{uniq}.events"
    await bus.setup()
    for i in range(8):
        await pub(bus, s, {"i": i})
    fast = await bus.read(s, "fast", "f", count=100)
    await bus.ack(s, "fast", [d.entry_id for d in fast])
    await bus.read(s, "slow", "s", count=2)  # 2 pending, 6 not delivered
    st = await bus.stream_status(s)
    raised = {(a.group, a.metric): a for a in st.alerts}
    assert set(raised) == {("slow", "backlog"), ("slow", "backlog_over_retention")}
    b = raised[("slow", "backlog")]
    assert (b.stream, b.value, b.threshold) == (s, 8, 3)
    assert "8 entries not acknowledged yet (6 not delivered, 2 pending; > 3)" in b.message
    r = raised[("slow", "backlog_over_retention")]
    assert (r.value, r.threshold) == (8, 5)
    assert {g.name: backlog(g) for g in st.groups} == {"fast": 0, "slow": 8}


async def test_every_condition_is_evaluated_raised_or_not(make_bus, uniq):
    bus = await make_bus({"events": ["a", "b"]})
    s = f"{uniq}.events"
    await bus.setup()
    await pub(bus, s, {"i": 0})
    st = await bus.stream_status(s)
    checks = alert_checks(st, bus.stream_config(s), bus.settings)
    assert {(c.group, c.metric) for c in checks} == {(None, "dead_letters")} | {
        (g, m) for g in ("a", "b") for m in ALERT_METRICS if m != "dead_letters"}
    assert [c.alert() for c in checks if c.firing] == alerts(st, bus.stream_config(s), bus.settings) == st.alerts
    assert {(c.group, c.metric) for c in checks if c.firing} == {("a", "no_consumer"), ("b", "no_consumer")}
    assert "length" not in ALERT_METRICS
