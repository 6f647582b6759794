"""Settings (``FRIDAY_`` environment variables) and topology (streams, groups, channels).

Every default is a named constant, every value is validated at start, and a bad value
fails with a message that says how to fix it (:class:`ConfigError`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

# --- named defaults -----------------------------------------------------------------
DEFAULT_STREAMS: dict[str, list[str]] = {
    "email.received": ["email-processor"],
    "document.processed": ["document-indexer"],
    "pipeline.error": ["error-handler"],
    "service.down": ["monitoring"],
    "trust.level.changed": ["trust-manager"],
    "action.corrected": ["feedback-loop"],
    "action.validated": ["trust-manager"],
}
DEFAULT_CHANNELS: list[str] = ["agent.completed", "file.uploaded"]
DEFAULT_RETENTION = 10_000  # entries kept per stream once every group acked them
DEFAULT_CLAIM_IDLE_MS = 60_000  # a pending entry idle this long is reclaimed from its consumer
DEFAULT_MAX_DELIVERIES = 5  # deliveries before an entry is dead-lettered
DEFAULT_BACKOFF_INITIAL_MS = 1_000
DEFAULT_BACKOFF_MULTIPLIER = 2.0
DEFAULT_BACKOFF_MAX_MS = 60_000
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_IDEMPOTENCY_WINDOW_S = 24 * 3600
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_PORT = 50051
DEFAULT_CLAIM_INTERVAL_MS = 1_000  # how often a blocked read looks for reclaimable / due entries
DEFAULT_TRIM_INTERVAL_S = 30.0
DEFAULT_MONITOR_INTERVAL_S = 15.0
DEFAULT_CONSUMER_MAX_IDLE_S = 24 * 3600.0  # idle consumers without pending entries are removed after this
DEFAULT_ALERT_LENGTH = 1000
DEFAULT_ALERT_PENDING = 100
DEFAULT_ALERT_LAG = 500
DEFAULT_ALERT_DEAD_LETTERS = 1
DEFAULT_SHUTDOWN_GRACE_S = 10.0
DEFAULT_WORKERS = 1
"""Worker processes serving both doors (FRIDAY_WORKERS). 1: one process, as before; more: a supervisor
(embedded Redis, setup, background loops, started once) and that many workers on the same ports."""
MAX_WORKERS = 64
MIN_REDIS_VERSION = (7, 0, 0)
WIRE_FORMATS = ("typed", "seed")
DEFAULT_WIRE_FORMAT = "typed"
"""How events are written into a stream entry (core/codec.py, docs/wire-format.md): ``typed`` adds
reserved ``_friday_*`` fields (types, metadata); ``seed`` writes exactly what the seed's publisher
writes, and nothing else."""
WireFormat = Literal["typed", "seed"]

# --- Redis topology (standalone, cluster, sentinel), replica acks, timeouts ---------------
RedisMode = Literal["standalone", "cluster", "sentinel"]
REDIS_MODES: tuple[RedisMode, ...] = ("standalone", "cluster", "sentinel")
DEFAULT_REDIS_MODE: RedisMode = "standalone"
DEFAULT_MIN_REPLICAS_ACK = 0  # replicas that must confirm a publish (WAIT); 0: the master's answer is enough
MAX_MIN_REPLICAS_ACK = 16
DEFAULT_REPLICA_ACK_TIMEOUT_MS = 500  # how long a publish waits for those replicas before it answers UNAVAILABLE
DEFAULT_REDIS_CONNECT_TIMEOUT_S = 5.0  # connecting to a Redis node (or a sentinel)
DEFAULT_REDIS_SOCKET_TIMEOUT_S = 5.0
"""Longest wait for one Redis reply. A blocking read's connection waits its block time on top of
this (see ``core/connection.py``), so a blocked XREADGROUP is never cut by it."""
DEFAULT_SENTINEL_PORT = 26379
_URL_TIMEOUT_PARAMS = {"socket_timeout": "redis_socket_timeout_s", "socket_connect_timeout": "redis_connect_timeout_s"}

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_ms: int = DEFAULT_BACKOFF_INITIAL_MS
    multiplier: float = DEFAULT_BACKOFF_MULTIPLIER
    max_ms: int = DEFAULT_BACKOFF_MAX_MS

    def delay_ms(self, delivery_count: int) -> int:
        """Backoff before the next delivery, after ``delivery_count`` failed deliveries (1-based)."""
        exp = max(0, delivery_count - 1)
        return int(min(self.max_ms, self.initial_ms * (self.multiplier**exp)))


@dataclass(frozen=True, slots=True)
class StreamConfig:
    name: str
    groups: tuple[str, ...]
    retention: int = DEFAULT_RETENTION
    claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    backoff: Backoff = field(default_factory=Backoff)
    max_backlog: int | None = None  # hard cap on the stream length; publishing fails when reached
    wire_format: WireFormat = DEFAULT_WIRE_FORMAT  # how publishing writes entries (see WIRE_FORMATS)


@dataclass(frozen=True, slots=True)
class Topology:
    streams: dict[str, StreamConfig]
    channels: tuple[str, ...]
    allow_unknown_streams: bool
    defaults: StreamConfig

    def stream(self, name: str) -> StreamConfig | None:
        return self.streams.get(name)

    def config_for(self, name: str) -> StreamConfig:
        """Configuration of a stream; unknown streams (when allowed) take the defaults."""
        cfg = self.streams.get(name)
        if cfg is not None:
            return cfg
        return StreamConfig(
            name=name,
            groups=(),
            retention=self.defaults.retention,
            claim_idle_ms=self.defaults.claim_idle_ms,
            max_deliveries=self.defaults.max_deliveries,
            backoff=self.defaults.backoff,
            max_backlog=self.defaults.max_backlog,
            wire_format=self.defaults.wire_format,
        )

    def groups(self) -> list[tuple[str, str]]:
        return [(s.name, g) for s in self.streams.values() for g in s.groups]


def parse_host_ports(text: str, what: str = "FRIDAY_REDIS_SENTINELS") -> list[tuple[str, int]]:
    """``host:port,host:port`` (IPv6 as ``[::1]:26379``) -> ``[(host, port), ...]``; ValueError saying what to fix."""
    hint = f"write {what}=host:port,host:port (e.g. 10.0.0.1:{DEFAULT_SENTINEL_PORT},10.0.0.2:{DEFAULT_SENTINEL_PORT})"
    out: list[tuple[str, int]] = []
    for pos, raw in enumerate(text.split(","), start=1):
        entry = raw.strip()
        if not entry:
            raise ValueError(f"entry {pos} is empty (stray comma?); {hint}")
        if "://" in entry:
            raise ValueError(f"entry {pos} ({entry!r}) is a URL; {hint}")
        if entry.startswith("["):
            host, sep, rest = entry[1:].partition("]")
            if not sep or not rest.startswith(":"):
                raise ValueError(f"entry {pos} ({entry!r}) has no port after the IPv6 address; {hint}")
            port_text = rest[1:]
        else:
            host, sep, port_text = entry.rpartition(":")
            if not sep:
                raise ValueError(f"entry {pos} ({entry!r}) has no port (Sentinel's usual port is {DEFAULT_SENTINEL_PORT}); {hint}")
            if ":" in host:
                raise ValueError(f"entry {pos} ({entry!r}): put an IPv6 address in brackets, e.g. [::1]:{DEFAULT_SENTINEL_PORT}")
        if not host or any(ch.isspace() for ch in host):
            raise ValueError(f"entry {pos} ({entry!r}) has no host; {hint}")
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"entry {pos} ({entry!r}) has an invalid port {port_text!r} (1-65535); {hint}")
        if (host, int(port_text)) in out:
            raise ValueError(f"entry {pos} ({entry!r}) repeats an earlier sentinel; list each once")
        out.append((host, int(port_text)))
    return out


class Settings(BaseSettings):
    """Runtime settings, from ``FRIDAY_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="FRIDAY_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        description="redis:// or rediss:// URL. Unset: the sidecar runs its own embedded redis-server (standalone only). "
        "cluster mode: any node of the cluster (the others are discovered). sentinel mode: optional, gives the data "
        "nodes' user, password, TLS (rediss://) and db; its host is not used (the sentinels name the master).",
    )
    redis_mode: RedisMode = Field(
        default=DEFAULT_REDIS_MODE, description="standalone (one Redis), cluster (Redis Cluster) or sentinel (Sentinel-managed master)."
    )
    redis_sentinels: str = Field(default="", description="sentinel mode: the sentinels, 'host:port,host:port'.")
    redis_sentinel_master: str | None = Field(default=None, description="sentinel mode: the name in 'sentinel monitor NAME ...'.")
    redis_sentinel_username: str | None = Field(default=None, description="sentinel mode: ACL user for the sentinels themselves.")
    redis_sentinel_password: SecretStr | None = Field(
        default=None, description="sentinel mode: password of the sentinels themselves (requirepass in sentinel.conf)."
    )
    redis_sentinel_tls: bool = Field(
        default=False, description="sentinel mode: talk TLS to the sentinels (CA and client certificate: the ssl_* options of FRIDAY_REDIS_URL)."
    )
    min_replicas_ack: int = Field(
        default=DEFAULT_MIN_REPLICAS_ACK, description="Replicas that must confirm a publish (WAIT) before it is acknowledged."
    )
    replica_ack_timeout_ms: int = Field(
        default=DEFAULT_REPLICA_ACK_TIMEOUT_MS, description="How long a publish waits for FRIDAY_MIN_REPLICAS_ACK replicas."
    )
    redis_connect_timeout_s: float = Field(default=DEFAULT_REDIS_CONNECT_TIMEOUT_S, description="Timeout to connect to a Redis node.")
    redis_socket_timeout_s: float = Field(
        default=DEFAULT_REDIS_SOCKET_TIMEOUT_S,
        description="Longest wait for one Redis reply; a blocking read waits its block time on top of it.",
    )
    data_dir: Path = Field(default=Path("data"), description="Embedded Redis data folder (AOF files).")
    redis_server_bin: str = "redis-server"
    embedded_appendfsync: Literal["always", "everysec", "no"] = "everysec"
    topology_file: Path | None = None
    key_prefix: str = "friday:"

    retention: int = DEFAULT_RETENTION
    claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS
    max_deliveries: int = DEFAULT_MAX_DELIVERIES
    backoff_initial_ms: int = DEFAULT_BACKOFF_INITIAL_MS
    backoff_multiplier: float = DEFAULT_BACKOFF_MULTIPLIER
    backoff_max_ms: int = DEFAULT_BACKOFF_MAX_MS
    max_backlog: int | None = None
    allow_unknown_streams: bool = False
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    idempotency_window_s: int = DEFAULT_IDEMPOTENCY_WINDOW_S
    setup_start: Literal["new", "all"] = "new"
    wire_format: WireFormat = Field(
        default=DEFAULT_WIRE_FORMAT,
        description="How the sidecar writes stream entries: typed (reserved _friday_* fields keep types and metadata) or "
        "seed (exactly what the seed's publisher writes, nothing else). A stream's wire_format in the topology overrides it.",
    )

    claim_interval_ms: int = DEFAULT_CLAIM_INTERVAL_MS
    trim_interval_s: float = DEFAULT_TRIM_INTERVAL_S
    monitor_interval_s: float = DEFAULT_MONITOR_INTERVAL_S
    consumer_max_idle_s: float = DEFAULT_CONSUMER_MAX_IDLE_S
    alert_length: int = DEFAULT_ALERT_LENGTH
    alert_pending: int = DEFAULT_ALERT_PENDING
    alert_lag: int = DEFAULT_ALERT_LAG
    alert_dead_letters: int = DEFAULT_ALERT_DEAD_LETTERS

    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    grpc_host: str = "127.0.0.1"
    grpc_port: int = DEFAULT_GRPC_PORT
    api_keys: str = Field(default="", description="Comma-separated keys, each 'key' or 'key:role+role'.")
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S
    log_level: str = "INFO"
    workers: int = Field(
        default=DEFAULT_WORKERS,
        description="Worker processes serving HTTP and gRPC on the same ports (SO_REUSEPORT). 1: one process; "
        "more: a supervisor runs the embedded Redis, the setup and the background loops once, and that many workers.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        scheme = urlparse(v).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"must start with redis://, rediss:// or unix:// (got {scheme or 'no scheme'!r}); "
                "e.g. redis://:password@host:6379/0 or rediss://user:password@host:6380/0"
            )
        return v

    @field_validator("redis_mode", mode="before")
    @classmethod
    def _mode(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().lower()
            if v not in REDIS_MODES:
                raise ValueError(f"must be one of {', '.join(REDIS_MODES)} (got {v!r})")
        return v

    @field_validator("wire_format", mode="before")
    @classmethod
    def _wire_format(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().lower()
            if v not in WIRE_FORMATS:
                raise ValueError(_wire_format_hint(v))
        return v

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, v: str) -> str:
        v = v.strip()
        if v:
            parse_host_ports(v)
        return v

    @field_validator("redis_sentinel_master", "redis_sentinel_username")
    @classmethod
    def _blank_is_unset(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if any(ch.isspace() for ch in v.strip()):
            raise ValueError("must not contain spaces")
        return v.strip()

    @field_validator("min_replicas_ack")
    @classmethod
    def _replicas(cls, v: int) -> int:
        if not 0 <= v <= MAX_MIN_REPLICAS_ACK:
            raise ValueError(f"must be between 0 (no replica needs to confirm) and {MAX_MIN_REPLICAS_ACK}")
        return v

    @field_validator("replica_ack_timeout_ms")
    @classmethod
    def _ack_timeout(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a positive number of milliseconds (WAIT with 0 would wait forever)")
        return v

    @field_validator("redis_connect_timeout_s", "redis_socket_timeout_s")
    @classmethod
    def _timeout(cls, v: float) -> float:
        if not 0 < v <= 3600:
            raise ValueError("must be a number of seconds > 0 and <= 3600")
        return v

    @field_validator(
        "retention", "claim_idle_ms", "max_deliveries", "backoff_initial_ms", "backoff_max_ms",
        "max_payload_bytes", "idempotency_window_s", "claim_interval_ms",
    )
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a positive integer")
        return v

    @field_validator("http_port", "grpc_port")
    @classmethod
    def _port(cls, v: int) -> int:
        if not 0 <= v <= 65535:
            raise ValueError("must be a TCP port between 0 and 65535")
        return v

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int) -> int:
        if not 1 <= v <= MAX_WORKERS:
            raise ValueError(
                f"must be between 1 (one process) and {MAX_WORKERS}; about one worker per CPU core the sidecar may use "
                "(more than the cores only adds processes)"
            )
        return v

    @field_validator("backoff_multiplier")
    @classmethod
    def _mult(cls, v: float) -> float:
        if v < 1.0:
            raise ValueError("must be >= 1.0")
        return v

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or not re.fullmatch(r"[A-Za-z0-9._:-]+", v):
            raise ValueError("must be non-empty, from A-Z a-z 0-9 . _ : -")
        return v

    @model_validator(mode="after")
    def _cross(self) -> Settings:
        if self.max_backlog is not None and self.max_backlog <= self.retention:
            raise ValueError(
                f"FRIDAY_MAX_BACKLOG ({self.max_backlog}) must be greater than FRIDAY_RETENTION ({self.retention}), "
                "or unset to disable the hard cap"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both FRIDAY_TLS_CERT_FILE and FRIDAY_TLS_KEY_FILE, or neither")
        if self.workers > 1:
            zero = [env for env, port in (("FRIDAY_HTTP_PORT", self.http_port), ("FRIDAY_GRPC_PORT", self.grpc_port)) if port == 0]
            if zero:
                raise ValueError(
                    f"FRIDAY_WORKERS={self.workers} needs fixed ports, and {' and '.join(zero)} is 0 (any free port): the workers "
                    "share each port (SO_REUSEPORT), and with 0 every worker would get a different one; "
                    "set it to a port number, or FRIDAY_WORKERS=1"
                )
        self._check_redis_topology()
        return self

    def _check_redis_topology(self) -> None:
        """Mode, sentinels, replica acks and timeouts fit together; ValueError saying how to fix."""
        mode = self.redis_mode
        url = urlparse(self.redis_url) if self.redis_url else None
        if url is not None:
            # Timeouts given as URL options (``?socket_timeout=10``) keep working: they become the
            # settings, so that every client built from these settings agrees on them.
            query = parse_qs(url.query)
            for param, attr in _URL_TIMEOUT_PARAMS.items():
                if param not in query:
                    continue
                env = f"FRIDAY_{attr.upper()}"
                try:
                    value = float(query[param][-1])
                except ValueError:
                    raise ValueError(f"FRIDAY_REDIS_URL: {param}={query[param][-1]!r} is not a number; use {env} instead") from None
                if attr in self.model_fields_set and value != getattr(self, attr):
                    raise ValueError(f"FRIDAY_REDIS_URL sets {param}={value:g} and {env} sets {getattr(self, attr):g}; keep one ({env})")
                if not 0 < value <= 3600:
                    raise ValueError(f"FRIDAY_REDIS_URL: {param} must be > 0 and <= 3600 seconds; use {env} instead")
                setattr(self, attr, value)
        sentinel_only = [
            env for env, is_set in (
                ("FRIDAY_REDIS_SENTINELS", bool(self.redis_sentinels)),
                ("FRIDAY_REDIS_SENTINEL_MASTER", self.redis_sentinel_master is not None),
                ("FRIDAY_REDIS_SENTINEL_USERNAME", self.redis_sentinel_username is not None),
                ("FRIDAY_REDIS_SENTINEL_PASSWORD", self.redis_sentinel_password is not None),
                ("FRIDAY_REDIS_SENTINEL_TLS", self.redis_sentinel_tls),
            ) if is_set
        ]
        if mode != "sentinel" and sentinel_only:
            raise ValueError(
                f"{', '.join(sentinel_only)} only apply with FRIDAY_REDIS_MODE=sentinel (the mode is {mode}); "
                "set FRIDAY_REDIS_MODE=sentinel, or unset them"
            )
        if mode == "cluster":
            if url is None:
                raise ValueError(
                    "FRIDAY_REDIS_MODE=cluster needs FRIDAY_REDIS_URL naming any node of the cluster, e.g. "
                    "redis://10.0.0.1:7000 (the others are discovered); the embedded Redis is standalone only"
                )
            if url.scheme == "unix":
                raise ValueError("FRIDAY_REDIS_MODE=cluster: cluster nodes are reached over TCP; use redis://host:port or rediss://host:port")
            if url.path.strip("/") not in ("", "0"):
                raise ValueError(f"FRIDAY_REDIS_MODE=cluster: a cluster has only database 0 (FRIDAY_REDIS_URL names /{url.path.strip('/')}); "
                                 "end the URL with /0 or nothing")
        if mode == "sentinel":
            if not self.redis_sentinels:
                raise ValueError(
                    "FRIDAY_REDIS_MODE=sentinel needs FRIDAY_REDIS_SENTINELS=host:port,host:port (the sentinels, "
                    f"usually port {DEFAULT_SENTINEL_PORT}); the embedded Redis is standalone only"
                )
            if self.redis_sentinel_master is None:
                raise ValueError(
                    "FRIDAY_REDIS_MODE=sentinel needs FRIDAY_REDIS_SENTINEL_MASTER, the name the sentinels monitor "
                    "('sentinel monitor NAME host port quorum' in sentinel.conf)"
                )
            if url is not None and url.scheme == "unix":
                raise ValueError("FRIDAY_REDIS_MODE=sentinel: the master the sentinels name is reached over TCP; "
                                 "FRIDAY_REDIS_URL may only be redis:// or rediss:// (user, password, TLS, db), or unset")
        if self.min_replicas_ack > 0 and self.embedded:
            raise ValueError(
                f"FRIDAY_MIN_REPLICAS_ACK={self.min_replicas_ack} needs replicas, and the embedded Redis has none; "
                "point FRIDAY_REDIS_URL (or FRIDAY_REDIS_MODE=sentinel / cluster) at a Redis with replicas, or set it to 0"
            )
        if self.replica_ack_timeout_ms >= self.redis_socket_timeout_s * 1000:
            raise ValueError(
                f"FRIDAY_REPLICA_ACK_TIMEOUT_MS ({self.replica_ack_timeout_ms}) must be below FRIDAY_REDIS_SOCKET_TIMEOUT_S "
                f"({self.redis_socket_timeout_s:g} s), or the socket timeout would cut the WAIT for replicas; lower one or raise the other"
            )

    @property
    def embedded(self) -> bool:
        """True when the sidecar runs its own redis-server (standalone mode, no FRIDAY_REDIS_URL)."""
        return self.redis_url is None and self.redis_mode == "standalone"

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """FRIDAY_REDIS_SENTINELS as ``[(host, port), ...]`` (empty outside sentinel mode)."""
        return parse_host_ports(self.redis_sentinels) if self.redis_sentinels else []


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (plus overrides); raise ConfigError with a fix on bad values."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            env = f"FRIDAY_{loc.upper()}" if loc else "settings"
            lines.append(f"{env}: {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def _check_name(kind: str, name: Any, where: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: {kind} name {name!r} is invalid; use 1-200 characters from A-Z a-z 0-9 . _ -")
    return name


def _int(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum} (got {value!r})")
    return value


def _wire_format_hint(got: Any) -> str:
    return (
        f"must be typed or seed (got {got!r}): typed (the default) keeps types and metadata in reserved _friday_* "
        "fields; seed writes exactly what Friday's seed publisher writes, for consumers that read every field"
    )


def _stream_config(name: str, spec: dict[str, Any], defaults: StreamConfig, where: str) -> StreamConfig:
    known = {"groups", "retention", "claim_idle_ms", "max_deliveries", "backoff", "max_backlog", "wire_format"}
    extra = set(spec) - known
    if extra:
        raise ConfigError(f"{where}: unknown keys {sorted(extra)}; allowed: {sorted(known)}")
    groups = spec.get("groups", list(defaults.groups))
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        raise ConfigError(f"{where}.groups must be a list of group names")
    groups = [_check_name("group", g, f"{where}.groups") for g in groups]
    if len(set(groups)) != len(groups):
        raise ConfigError(f"{where}.groups lists a group twice")
    backoff = defaults.backoff
    if "backoff" in spec:
        b = spec["backoff"]
        if not isinstance(b, dict) or set(b) - {"initial_ms", "multiplier", "max_ms"}:
            raise ConfigError(f"{where}.backoff must be a mapping with initial_ms, multiplier, max_ms")
        mult = b.get("multiplier", backoff.multiplier)
        if not isinstance(mult, (int, float)) or mult < 1:
            raise ConfigError(f"{where}.backoff.multiplier must be a number >= 1")
        backoff = Backoff(
            initial_ms=_int(b.get("initial_ms", backoff.initial_ms), f"{where}.backoff.initial_ms"),
            multiplier=float(mult),
            max_ms=_int(b.get("max_ms", backoff.max_ms), f"{where}.backoff.max_ms"),
        )
    retention = _int(spec.get("retention", defaults.retention), f"{where}.retention")
    max_backlog = spec.get("max_backlog", defaults.max_backlog)
    if max_backlog is not None:
        max_backlog = _int(max_backlog, f"{where}.max_backlog")
        if max_backlog <= retention:
            raise ConfigError(f"{where}.max_backlog ({max_backlog}) must be greater than retention ({retention})")
    wire_format = spec.get("wire_format", defaults.wire_format)
    if wire_format not in WIRE_FORMATS:
        raise ConfigError(f"{where}.wire_format {_wire_format_hint(wire_format)}")
    return StreamConfig(
        name=name,
        groups=tuple(groups),
        retention=retention,
        claim_idle_ms=_int(spec.get("claim_idle_ms", defaults.claim_idle_ms), f"{where}.claim_idle_ms"),
        max_deliveries=_int(spec.get("max_deliveries", defaults.max_deliveries), f"{where}.max_deliveries"),
        backoff=backoff,
        max_backlog=max_backlog,
        wire_format=wire_format,
    )


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read topology file {path} (FRIDAY_TOPOLOGY_FILE): {exc.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error becomes a config error
        raise ConfigError(f"topology file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"topology file {path} must contain a mapping with 'streams' and 'channels'")
    return data


def build_topology(settings: Settings, data: dict[str, Any] | None = None) -> Topology:
    """Topology from the file named by settings (or ``data``), else the seed's defaults."""
    if data is None and settings.topology_file is not None:
        data = _read_file(settings.topology_file)
    where = str(settings.topology_file or "topology")
    defaults = StreamConfig(
        name="*",
        groups=(),
        retention=settings.retention,
        claim_idle_ms=settings.claim_idle_ms,
        max_deliveries=settings.max_deliveries,
        backoff=Backoff(settings.backoff_initial_ms, settings.backoff_multiplier, settings.backoff_max_ms),
        max_backlog=settings.max_backlog,
        wire_format=settings.wire_format,
    )
    allow_unknown = settings.allow_unknown_streams
    if data is None:
        streams = {n: _stream_config(n, {"groups": g}, defaults, f"stream {n}") for n, g in DEFAULT_STREAMS.items()}
        return Topology(streams, tuple(DEFAULT_CHANNELS), allow_unknown, defaults)

    extra = set(data) - {"streams", "channels", "defaults", "allow_unknown_streams"}
    if extra:
        raise ConfigError(f"{where}: unknown top-level keys {sorted(extra)}; allowed: streams, channels, defaults, allow_unknown_streams")
    if "defaults" in data:
        if not isinstance(data["defaults"], dict):
            raise ConfigError(f"{where}: 'defaults' must be a mapping")
        defaults = _stream_config("*", data["defaults"], defaults, f"{where}: defaults")
    if "allow_unknown_streams" in data:
        if not isinstance(data["allow_unknown_streams"], bool):
            raise ConfigError(f"{where}: allow_unknown_streams must be true or false")
        allow_unknown = data["allow_unknown_streams"]
    raw_streams = data.get("streams", {})
    if not isinstance(raw_streams, dict):
        raise ConfigError(f"{where}: 'streams' must be a mapping of stream name to {{groups: [...]}}")
    streams: dict[str, StreamConfig] = {}
    for name, spec in raw_streams.items():
        _check_name("stream", name, where)
        if spec is None:
            spec = {}
        if isinstance(spec, list):
            spec = {"groups": spec}
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: stream {name} must map to a mapping or a list of groups")
        streams[name] = _stream_config(name, spec, defaults, f"{where}: stream {name}")
    channels = data.get("channels", [])
    if not isinstance(channels, list):
        raise ConfigError(f"{where}: 'channels' must be a list of channel names")
    for c in channels:
        _check_name("channel", c, f"{where}: channels")
        if c in streams:
            raise ConfigError(f"{where}: {c!r} is declared both as a stream and as a channel; keep one")
    return Topology(streams, tuple(channels), allow_unknown, defaults)
