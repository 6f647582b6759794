"""Async Python client of the Friday sidecar (gRPC), for agents. See :class:`FridayClient`."""

from ..core.errors import BacklogFull, Conflict, FridayError, InvalidArgument, NotFound, Unavailable
from ..core.models import BusStatus, ChannelMessage, DeadLetter, EventMeta, NackResult, PublishResult, ReplayResult, StreamInfo
from .client import FridayClient
from .convert import Event
from .errors import PermissionDenied, Unauthenticated
from .subscription import Delivery, Subscription

__all__ = [
    "BacklogFull", "BusStatus", "ChannelMessage", "Conflict", "DeadLetter", "Delivery", "Event", "EventMeta",
    "FridayClient", "FridayError", "InvalidArgument", "NackResult", "NotFound", "PermissionDenied", "PublishResult",
    "ReplayResult", "StreamInfo", "Subscription", "Unauthenticated", "Unavailable",
]
