"""The core: all Streams logic, no transport. Both doors (gRPC, HTTP) and the CLI call :class:`EventBus`."""

from .bus import BusObserver, EventBus
from .errors import (
    BacklogFull,
    ConfigError,
    Conflict,
    ErrorKind,
    FridayError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from .models import (
    Alert,
    BusStatus,
    ChannelMessage,
    DeadLetter,
    Delivery,
    EventMeta,
    NackResult,
    PublishRequest,
    PublishResult,
    ReplayResult,
    SetupReport,
    StreamStatus,
    TrimReport,
)
from .runtime import Runtime
from .settings import Settings, StreamConfig, Topology, build_topology, load_settings

__all__ = [
    "Alert", "BacklogFull", "BusObserver", "BusStatus", "ChannelMessage", "ConfigError", "Conflict", "DeadLetter",
    "Delivery", "ErrorKind", "EventBus", "EventMeta", "FridayError", "InvalidArgument", "NackResult", "NotFound",
    "PublishRequest", "PublishResult", "ReplayResult", "Runtime", "Settings", "SetupReport", "StreamConfig",
    "StreamStatus", "Topology", "TrimReport", "Unavailable", "build_topology", "load_settings",
]
