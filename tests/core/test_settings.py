"""Settings and topology validation (pure): bad values fail at start with a fix in the message."""

from __future__ import annotations

import pytest
from friday_bus.core import ConfigError, Settings, build_topology, load_settings
from friday_bus.core.settings import DEFAULT_STREAMS, Backoff


def settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)


def test_defaults_are_the_seed_topology():
    topo = build_topology(settings())
    assert {n: list(c.groups) for n, c in topo.streams.items()} == DEFAULT_STREAMS
    assert topo.channels == ("agent.completed", "file.uploaded")
    cfg = topo.streams["email.received"]
    assert (cfg.retention, cfg.claim_idle_ms, cfg.max_deliveries, cfg.max_backlog) == (10_000, 60_000, 5, None)
    assert ("action.validated", "trust-manager") in topo.groups() and ("trust.level.changed", "trust-manager") in topo.groups()


@pytest.mark.parametrize("env, fragment", [
    ({"FRIDAY_REDIS_URL": "localhost:6379"}, "redis://"),
    ({"FRIDAY_RETENTION": "0"}, "FRIDAY_RETENTION"),
    ({"FRIDAY_HTTP_PORT": "70000"}, "FRIDAY_HTTP_PORT"),
    ({"FRIDAY_MAX_BACKLOG": "10", "FRIDAY_RETENTION": "100"}, "FRIDAY_MAX_BACKLOG"),
    ({"FRIDAY_TLS_CERT_FILE": "/x.pem"}, "FRIDAY_TLS_KEY_FILE"),
    ({"FRIDAY_BACKOFF_MULTIPLIER": "0.5"}, "FRIDAY_BACKOFF_MULTIPLIER"),
    ({"FRIDAY_SETUP_START": "middle"}, "FRIDAY_SETUP_START"),
])
def test_bad_settings_name_the_variable(monkeypatch, env, fragment):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as exc:
        load_settings(_env_file=None)
    assert fragment in str(exc.value)


@pytest.mark.parametrize("data, fragment", [
    ({"streams": {"a b": ["g"]}}, "stream name 'a b' is invalid"),
    ({"streams": {"s": {"groups": ["g", "g"]}}}, "lists a group twice"),
    ({"streams": {"s": {"groups": ["g"], "retention": -1}}}, "retention must be an integer >= 1"),
    ({"streams": {"s": {"groups": ["g"], "max_backlog": 5, "retention": 10}}}, "must be greater than retention"),
    ({"streams": {"s": {"groups": ["g"], "colour": "red"}}}, "unknown keys ['colour']"),
    ({"streams": {"s": ["g"]}, "channels": ["s"]}, "both as a stream and as a channel"),
    ({"streams": [], "channels": []}, "'streams' must be a mapping"),
    ({"stream": {}}, "unknown top-level keys ['stream']"),
    ({"streams": {"s": {"groups": ["g"], "backoff": {"multiplier": 0.1}}}}, "multiplier must be a number >= 1"),
])
def test_bad_topology(data, fragment):
    with pytest.raises(ConfigError) as exc:
        build_topology(settings(), data)
    assert fragment in str(exc.value)


def test_topology_file_overrides(tmp_path):
    f = tmp_path / "topo.yaml"
    f.write_text("defaults: {max_deliveries: 2}\nstreams:\n  a: [g1, g2]\n  b: {groups: [g3], retention: 5, backoff: {initial_ms: 10}}\n"
                 "channels: [c]\nallow_unknown_streams: true\n")
    topo = build_topology(settings(topology_file=f))
    assert topo.streams["a"].groups == ("g1", "g2") and topo.streams["a"].max_deliveries == 2
    assert topo.streams["b"].retention == 5 and topo.streams["b"].backoff.initial_ms == 10
    assert topo.allow_unknown_streams and topo.channels == ("c",)
    assert topo.config_for("other").max_deliveries == 2
    f.write_text("streams: [")
    with pytest.raises(ConfigError) as exc:
        build_topology(settings(topology_file=f))
    assert "not valid yaml" in str(exc.value)
    with pytest.raises(ConfigError):
        build_topology(settings(topology_file=tmp_path / "missing.yaml"))


def test_backoff_grows_and_caps():
    b = Backoff(initial_ms=100, multiplier=2, max_ms=500)
    assert [b.delay_ms(n) for n in range(1, 6)] == [100, 200, 400, 500, 500]
