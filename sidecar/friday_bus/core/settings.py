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
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator, model_validator
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
MIN_REDIS_VERSION = (7, 0, 0)

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
        )

    def groups(self) -> list[tuple[str, str]]:
        return [(s.name, g) for s in self.streams.values() for g in s.groups]


class Settings(BaseSettings):
    """Runtime settings, from ``FRIDAY_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="FRIDAY_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        default=None, description="redis:// or rediss:// URL. Unset: the sidecar runs its own embedded redis-server."
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
        return self

    @property
    def embedded(self) -> bool:
        return self.redis_url is None


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


def _stream_config(name: str, spec: dict[str, Any], defaults: StreamConfig, where: str) -> StreamConfig:
    known = {"groups", "retention", "claim_idle_ms", "max_deliveries", "backoff", "max_backlog"}
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
    return StreamConfig(
        name=name,
        groups=tuple(groups),
        retention=retention,
        claim_idle_ms=_int(spec.get("claim_idle_ms", defaults.claim_idle_ms), f"{where}.claim_idle_ms"),
        max_deliveries=_int(spec.get("max_deliveries", defaults.max_deliveries), f"{where}.max_deliveries"),
        backoff=backoff,
        max_backlog=max_backlog,
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
