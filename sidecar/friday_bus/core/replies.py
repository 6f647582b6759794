"""Redis error replies, recognised in one place.

Redis tells errors apart by the first word of the reply (``NOGROUP``, ``BUSYGROUP``...); a few
only by their text (``ERR no such key``). redis-py strips the first word of the codes it knows
(``READONLY``, ``OOM``, ``NOAUTH``...) from the message and keeps it as ``status_code``, so
the code is read from there when it is set, and from the text otherwise.

The core never matches error texts itself: it asks :func:`reply_kind` and decides on the kind.
"""

from __future__ import annotations

import enum


class ReplyKind(enum.Enum):
    NOGROUP = "NOGROUP"
    """The consumer group, or the stream it was on, does not exist."""
    NO_SUCH_KEY = "NO_SUCH_KEY"
    """The stream does not exist (``ERR no such key``, ``... requires the key to exist``)."""
    UNBLOCKED = "UNBLOCKED"
    """A blocked read ended because its stream or group was deleted meanwhile."""
    BACKLOG_FULL = "BACKLOG_FULL"
    """Friday's own PUBLISH script: ``BACKLOG_FULL <stream> <length> <cap>``."""
    BUSYGROUP = "BUSYGROUP"
    """The consumer group already exists."""
    NOAUTH = "NOAUTH"
    WRONGPASS = "WRONGPASS"
    LOADING = "LOADING"
    BUSY = "BUSY"
    MASTERDOWN = "MASTERDOWN"
    READONLY = "READONLY"
    TRYAGAIN = "TRYAGAIN"
    CLUSTERDOWN = "CLUSTERDOWN"
    OOM = "OOM"
    OTHER = "OTHER"
    """Anything else: a rejected command the core does not expect."""

    @property
    def transient(self) -> bool:
        """Redis cannot serve the request now, but the same request may succeed later."""
        return self in _TRANSIENT

    @property
    def auth(self) -> bool:
        """Redis wants (other) credentials."""
        return self in (ReplyKind.NOAUTH, ReplyKind.WRONGPASS)

    @property
    def missing(self) -> bool:
        """The stream or the group is not there."""
        return self in (ReplyKind.NOGROUP, ReplyKind.NO_SUCH_KEY)


_TRANSIENT = frozenset({
    ReplyKind.LOADING, ReplyKind.BUSY, ReplyKind.MASTERDOWN, ReplyKind.READONLY,
    ReplyKind.TRYAGAIN, ReplyKind.CLUSTERDOWN, ReplyKind.OOM,
})
_BY_CODE = {k.value: k for k in ReplyKind if k not in (ReplyKind.NO_SUCH_KEY, ReplyKind.OTHER)}


def reply_kind(reply: BaseException | str) -> ReplyKind:
    """The kind of a Redis error reply, given the exception redis-py raised or the reply text."""
    text = str(reply)
    code = getattr(reply, "status_code", None) if isinstance(reply, BaseException) else None
    if not isinstance(code, str) or not code:
        words = text.split(maxsplit=1)
        code = words[0] if words else ""
    kind = _BY_CODE.get(code)
    if kind is not None:
        return kind
    if "NOGROUP" in text:  # e.g. wrapped in a script error by an older Redis
        return ReplyKind.NOGROUP
    if "requires the key to exist" in text or "no such key" in text.lower():
        return ReplyKind.NO_SUCH_KEY
    return ReplyKind.OTHER


def vanished(reply: BaseException | str) -> bool:
    """The reply of a group read that means its stream or group is gone: NOGROUP (missing when
    the read starts) or UNBLOCKED "... no longer exists" (deleted while the read was blocked).
    An UNBLOCKED for another reason (a master demoted in a failover, ``CLIENT UNBLOCK ... ERROR``)
    is not: the server ended the wait, the group is still there."""
    kind = reply_kind(reply)
    return kind is ReplyKind.NOGROUP or (kind is ReplyKind.UNBLOCKED and "no longer exists" in str(reply))
