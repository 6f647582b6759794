"""Validation of names and entry ids (pure functions)."""

from __future__ import annotations

import re

from .errors import InvalidArgument

MAX_NAME_LENGTH = 200
# No braces in stream and group names, on purpose (keep it so): Redis Cluster hashes a key on the
# part between the first ``{`` and the next ``}``. Companion keys carry the stream's name as that
# tag (``friday:dlq:{email.received}``, core/keys.py) to share the stream's slot; a stream named
# ``a{b}`` would hash on ``b`` while its companions hash on ``a{b``: Lua scripts touching both
# would fail with CROSSSLOT on a cluster.
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_CONSUMER = re.compile(r"^[A-Za-z0-9._:@-]{1,200}$")
_ENTRY_ID = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")
U64_MAX = 2**64 - 1


def _check(kind: str, value: object, pattern: re.Pattern[str], allowed: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        shown = value if isinstance(value, str) and len(value) <= 60 else (str(value)[:60] + "...")
        raise InvalidArgument(
            f"invalid {kind} name {shown!r}: use 1 to {MAX_NAME_LENGTH} characters from {allowed}", field=kind
        )
    return value


def check_stream(name: object) -> str:
    return _check("stream", name, _NAME, "A-Z a-z 0-9 . _ -")


def check_group(name: object) -> str:
    return _check("group", name, _NAME, "A-Z a-z 0-9 . _ -")


def check_channel(name: object) -> str:
    return _check("channel", name, _NAME, "A-Z a-z 0-9 . _ -")


def check_consumer(name: object) -> str:
    return _check("consumer", name, _CONSUMER, "A-Z a-z 0-9 . _ - : @")


def parse_entry_id(value: object, field: str = "id") -> tuple[int, int]:
    """Parse ``<ms>-<seq>``; both parts must fit in 64 bits. Special ids (``$``, ``>``, ``*``) are refused."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a stream entry id like '1717000000000-0'", field=field)
    m = _ENTRY_ID.fullmatch(value)
    if not m:
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise InvalidArgument(
            f"invalid entry id {shown!r} in {field}: expected '<milliseconds>-<sequence>', e.g. '1717000000000-0'",
            field=field,
        )
    ms, seq = int(m.group(1)), int(m.group(2))
    if ms > U64_MAX or seq > U64_MAX:
        raise InvalidArgument(f"entry id {value!r} in {field} is out of range (each part must fit in 64 bits)", field=field)
    return ms, seq


def check_entry_id(value: object, field: str = "id") -> str:
    parse_entry_id(value, field)
    assert isinstance(value, str)
    return value


def next_id(entry_id: str) -> str:
    """The smallest id strictly greater than ``entry_id``."""
    ms, seq = parse_entry_id(entry_id)
    if seq < U64_MAX:
        return f"{ms}-{seq + 1}"
    return f"{ms + 1}-0"


def id_before_time(ms: int) -> str:
    """The greatest id strictly before time ``ms`` (to rewind a group so that entries from ``ms`` on are redelivered)."""
    if ms <= 0:
        return "0-0"
    return f"{ms - 1}-{U64_MAX}"


def id_key(entry_id: str) -> tuple[int, int]:
    return parse_entry_id(entry_id)
