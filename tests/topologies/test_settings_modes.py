"""Redis mode settings (pure, no server): every bad combination fails at start, saying how to fix it."""

from __future__ import annotations

import os

import pytest
from friday_bus.core import ConfigError, load_settings
from friday_bus.core.settings import (
    DEFAULT_MIN_REPLICAS_ACK,
    DEFAULT_REDIS_CONNECT_TIMEOUT_S,
    DEFAULT_REDIS_MODE,
    DEFAULT_REDIS_SOCKET_TIMEOUT_S,
    DEFAULT_REPLICA_ACK_TIMEOUT_MS,
    Settings,
    parse_host_ports,
)


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for k in list(os.environ):
        if k.startswith("FRIDAY_"):
            monkeypatch.delenv(k)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return load_settings(_env_file=None)


def test_defaults_keep_todays_standalone_embedded(monkeypatch):
    s = load(monkeypatch)
    assert (s.redis_mode, s.min_replicas_ack, s.replica_ack_timeout_ms) == (DEFAULT_REDIS_MODE, DEFAULT_MIN_REPLICAS_ACK,
                                                                           DEFAULT_REPLICA_ACK_TIMEOUT_MS)
    assert (s.redis_connect_timeout_s, s.redis_socket_timeout_s) == (DEFAULT_REDIS_CONNECT_TIMEOUT_S, DEFAULT_REDIS_SOCKET_TIMEOUT_S)
    assert s.redis_mode == "standalone" and s.embedded and s.sentinel_addresses == []


def test_cluster_mode(monkeypatch):
    s = load(monkeypatch, FRIDAY_REDIS_MODE="Cluster", FRIDAY_REDIS_URL="redis://10.0.0.1:7000", FRIDAY_MIN_REPLICAS_ACK="1")
    assert (s.redis_mode, s.embedded, s.min_replicas_ack) == ("cluster", False, 1)


def test_sentinel_mode(monkeypatch):
    s = load(monkeypatch, FRIDAY_REDIS_MODE="sentinel", FRIDAY_REDIS_SENTINELS=" 10.0.0.1:26379, [::1]:26380 ,s3:5000",
             FRIDAY_REDIS_SENTINEL_MASTER="mymaster", FRIDAY_REDIS_SENTINEL_PASSWORD="s3cret",
             FRIDAY_REDIS_SENTINEL_USERNAME="friday", FRIDAY_REDIS_SENTINEL_TLS="true", FRIDAY_MIN_REPLICAS_ACK="1")
    assert s.sentinel_addresses == [("10.0.0.1", 26379), ("::1", 26380), ("s3", 5000)]
    assert s.redis_sentinel_master == "mymaster" and s.redis_sentinel_tls and s.redis_sentinel_username == "friday"
    assert s.redis_sentinel_password is not None and s.redis_sentinel_password.get_secret_value() == "s3cret"
    assert not s.embedded  # sentinel mode without FRIDAY_REDIS_URL is not the embedded Redis
    assert "s3cret" not in str(s.model_dump(mode="json")) and "s3cret" not in repr(s)  # `friday config` shows no secret


def test_url_timeouts_become_the_settings(monkeypatch):
    s = load(monkeypatch, FRIDAY_REDIS_URL="redis://h:6379/0?socket_timeout=9&socket_connect_timeout=2")
    assert (s.redis_socket_timeout_s, s.redis_connect_timeout_s) == (9.0, 2.0)


@pytest.mark.parametrize("env, fragments", [
    ({"FRIDAY_REDIS_MODE": "replicated"}, ["FRIDAY_REDIS_MODE", "standalone, cluster, sentinel"]),
    ({"FRIDAY_REDIS_MODE": "cluster"}, ["FRIDAY_REDIS_MODE=cluster needs FRIDAY_REDIS_URL", "embedded Redis is standalone only"]),
    ({"FRIDAY_REDIS_MODE": "cluster", "FRIDAY_REDIS_URL": "unix:///tmp/r.sock"}, ["over TCP", "redis://host:port"]),
    ({"FRIDAY_REDIS_MODE": "cluster", "FRIDAY_REDIS_URL": "redis://h:7000/3"}, ["only database 0", "/3"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINEL_MASTER": "m"},
     ["needs FRIDAY_REDIS_SENTINELS=host:port,host:port", "embedded Redis is standalone only"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "h:26379"}, ["needs FRIDAY_REDIS_SENTINEL_MASTER", "sentinel monitor NAME"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "h:26379", "FRIDAY_REDIS_SENTINEL_MASTER": "m",
      "FRIDAY_REDIS_URL": "unix:///tmp/r.sock"}, ["FRIDAY_REDIS_URL may only be redis:// or rediss://"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "h1:26379,,h2:26379", "FRIDAY_REDIS_SENTINEL_MASTER": "m"},
     ["FRIDAY_REDIS_SENTINELS", "entry 2 is empty"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "h1", "FRIDAY_REDIS_SENTINEL_MASTER": "m"},
     ["FRIDAY_REDIS_SENTINELS", "has no port", "26379"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "h1:port", "FRIDAY_REDIS_SENTINEL_MASTER": "m"},
     ["FRIDAY_REDIS_SENTINELS", "invalid port 'port'"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "h1:70000", "FRIDAY_REDIS_SENTINEL_MASTER": "m"},
     ["FRIDAY_REDIS_SENTINELS", "invalid port"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "redis://h1:26379", "FRIDAY_REDIS_SENTINEL_MASTER": "m"},
     ["FRIDAY_REDIS_SENTINELS", "is a URL"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "::1:26379", "FRIDAY_REDIS_SENTINEL_MASTER": "m"},
     ["FRIDAY_REDIS_SENTINELS", "IPv6 address in brackets"]),
    ({"FRIDAY_REDIS_MODE": "sentinel", "FRIDAY_REDIS_SENTINELS": "h:1,h:1", "FRIDAY_REDIS_SENTINEL_MASTER": "m"},
     ["FRIDAY_REDIS_SENTINELS", "repeats"]),
    ({"FRIDAY_REDIS_SENTINELS": "h:26379"}, ["FRIDAY_REDIS_SENTINELS only apply with FRIDAY_REDIS_MODE=sentinel"]),
    ({"FRIDAY_REDIS_URL": "redis://h:6379", "FRIDAY_REDIS_SENTINEL_MASTER": "m", "FRIDAY_REDIS_SENTINEL_TLS": "1"},
     ["FRIDAY_REDIS_SENTINEL_MASTER, FRIDAY_REDIS_SENTINEL_TLS only apply", "(the mode is standalone)"]),
    ({"FRIDAY_MIN_REPLICAS_ACK": "1"}, ["FRIDAY_MIN_REPLICAS_ACK=1 needs replicas", "embedded Redis has none"]),
    ({"FRIDAY_MIN_REPLICAS_ACK": "-1", "FRIDAY_REDIS_URL": "redis://h"}, ["FRIDAY_MIN_REPLICAS_ACK", "between 0"]),
    ({"FRIDAY_REPLICA_ACK_TIMEOUT_MS": "0"}, ["FRIDAY_REPLICA_ACK_TIMEOUT_MS", "wait forever"]),
    ({"FRIDAY_REPLICA_ACK_TIMEOUT_MS": "6000"}, ["FRIDAY_REPLICA_ACK_TIMEOUT_MS (6000) must be below FRIDAY_REDIS_SOCKET_TIMEOUT_S"]),
    ({"FRIDAY_REDIS_SOCKET_TIMEOUT_S": "0"}, ["FRIDAY_REDIS_SOCKET_TIMEOUT_S", "> 0"]),
    ({"FRIDAY_REDIS_CONNECT_TIMEOUT_S": "-2"}, ["FRIDAY_REDIS_CONNECT_TIMEOUT_S", "> 0"]),
    ({"FRIDAY_REDIS_URL": "redis://h/0?socket_timeout=3", "FRIDAY_REDIS_SOCKET_TIMEOUT_S": "4"},
     ["socket_timeout=3", "FRIDAY_REDIS_SOCKET_TIMEOUT_S sets 4", "keep one"]),
    ({"FRIDAY_REDIS_URL": "redis://h/0?socket_timeout=soon"}, ["not a number", "FRIDAY_REDIS_SOCKET_TIMEOUT_S"]),
])
def test_bad_combinations_say_how_to_fix(monkeypatch, env, fragments):
    with pytest.raises(ConfigError) as exc:
        load(monkeypatch, **env)
    for fragment in fragments:
        assert fragment in str(exc.value)


def test_host_port_list_parser():
    assert parse_host_ports("a:1") == [("a", 1)]
    assert parse_host_ports("a:1, b:2") == [("a", 1), ("b", 2)]
    with pytest.raises(ValueError, match="entry 1 is empty"):
        parse_host_ports("")
    with pytest.raises(ValueError, match="has no host"):
        parse_host_ports(":26379")
