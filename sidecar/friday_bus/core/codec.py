"""Wire format of an event in a Redis stream entry (pure functions, no I/O).

Friday's existing Python publisher (the seed) writes one field per payload key:
dicts and lists as JSON text (``json.dumps`` with its defaults: ``", "`` and ``": "``
separators, non-ASCII escaped), every other value as ``str(value)``. Friday's existing
consumer reads every field back, JSON-decoding values that start with ``{`` or ``[``.

Two wire formats write that shape (``FRIDAY_WIRE_FORMAT``, or a stream's ``wire_format``
in the topology; docs/wire-format.md):

``seed``
    exactly what the seed's publisher writes for the same payload: the same keys, the same
    text, and nothing else. What is given up: the sidecar's own consumers read such an entry
    as the seed's consumer does (``True`` comes back as the text ``"True"``, ``3`` as
    ``"3"``; objects and arrays as JSON), and the metadata (source, correlation id, publish
    time) is not stored: it reads back as the entry id's time, ``encoding="legacy"``.
    Idempotency keys keep working: they live in their own Redis key, not in the entry. The
    size limit applies to this encoded form. NaN and Infinity are refused, as in ``typed``.
``typed`` (the default)
    the same payload fields (objects and arrays as compact JSON), plus reserved fields
    (prefix ``_friday_``) that payload keys cannot use:

``_friday_ts``
    publish time in ms. Its presence marks an entry written by the sidecar.
``_friday_types``
    compact JSON object ``{key: tag}`` for every payload key whose value is not a string:
    ``i`` int, ``f`` float, ``b`` bool, ``n`` null, ``j`` JSON object or array.
    With it the sidecar's own consumers get ``true`` back as a boolean, ``3`` as an
    integer, nested objects nested and ``null`` as null.
``_friday_eid``, ``_friday_src``, ``_friday_cid``
    event id (idempotency key), source and correlation id, when given.
``_friday_tp``, ``_friday_tstate``
    W3C trace context (``traceparent``, ``tracestate``), when given (checked by
    :func:`validate_trace_context`). The ``seed`` format stores neither.

Entries without ``_friday_ts`` are the seed's (written by its publisher, or in the ``seed``
format): every key they have is read, ``_friday``-prefixed ones included, and decoded the way
the seed's consumer does (values are text; text that parses as a JSON object or array is
decoded); they are flagged ``legacy``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import InvalidArgument
from .limits import MAX_META_LENGTH
from .models import EventMeta, JSONObject

RESERVED_PREFIX = "_friday"
F_TS = "_friday_ts"
F_TYPES = "_friday_types"
F_EVENT_ID = "_friday_eid"
F_SOURCE = "_friday_src"
F_CORRELATION = "_friday_cid"
F_TRACEPARENT = "_friday_tp"
F_TRACESTATE = "_friday_tstate"
# Dead-letter fields, added to the original fields in the dead-letter stream (all start with DLQ_PREFIX).
DLQ_PREFIX = "_friday_dlq_"
F_DLQ_REASON = DLQ_PREFIX + "reason"
F_DLQ_ORIGINAL_ID = DLQ_PREFIX + "original_id"
F_DLQ_GROUP = DLQ_PREFIX + "group"
F_DLQ_DELIVERIES = DLQ_PREFIX + "deliveries"
F_DLQ_AT = DLQ_PREFIX + "at"
# Added to a replayed entry: the id of the dead letter it came from.
F_REPLAYED_FROM = "_friday_replayed_from"

WIRE_TYPED = "typed"
WIRE_SEED = "seed"

_COMPACT = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False}
_NAN_REFUSED = "payload contains NaN or Infinity, which JSON cannot carry"
# One encoder, built once: json.dumps with any non-default option builds a new JSONEncoder per call.
_compact_encode = json.JSONEncoder(**_COMPACT).encode  # type: ignore[arg-type]


def _dumps(value: Any) -> str:
    try:
        return _compact_encode(value)
    except ValueError as exc:  # NaN / Infinity somewhere inside
        raise InvalidArgument("payload contains NaN or Infinity, which JSON cannot carry", field="payload") from exc
    except TypeError as exc:
        raise InvalidArgument(f"payload is not JSON-serialisable: {exc}", field="payload") from exc


def validate_meta_value(name: str, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string", field=name)
    if value == "" or len(value) > MAX_META_LENGTH:
        raise InvalidArgument(f"{name} must be 1 to {MAX_META_LENGTH} characters long", field=name)
    if "\x00" in value:
        raise InvalidArgument(f"{name} must not contain NUL characters", field=name)


_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_TRACESTATE_KEY = re.compile(r"[a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}")
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
MAX_TRACESTATE_LENGTH = 512
MAX_TRACESTATE_MEMBERS = 32
_TRACEPARENT_HINT = "version-traceid-parentid-flags in lowercase hex, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def validate_trace_context(traceparent: str | None, tracestate: str | None) -> None:
    """Raise :class:`InvalidArgument` unless ``traceparent`` (and ``tracestate``) are valid W3C trace
    context headers (https://www.w3.org/TR/trace-context/): ``traceparent`` is
    ``vv-<32 hex>-<16 hex>-ff`` in lowercase hex, version not ``ff``, trace id and parent id not all
    zeros; ``tracestate`` (only checked with a ``traceparent``: without one it is ignored, as W3C
    says) is at most 512 characters and 32 comma-separated ``key=value`` members. The one check,
    for every door."""
    if traceparent is None:  # a tracestate without a traceparent is ignored (W3C): the caller drops it
        return
    if not isinstance(traceparent, str):
        raise InvalidArgument("traceparent must be a string", field="traceparent")
    m = _TRACEPARENT.fullmatch(traceparent)
    if m is None:
        raise InvalidArgument(f"traceparent {traceparent[:80]!r} is malformed: send {_TRACEPARENT_HINT}", field="traceparent")
    if traceparent.startswith("ff"):
        raise InvalidArgument(f"traceparent version ff is invalid: send {_TRACEPARENT_HINT}", field="traceparent")
    if m.group(1) == "0" * 32:
        raise InvalidArgument("traceparent has an all-zero trace id, which is invalid: send a random one", field="traceparent")
    if m.group(2) == "0" * 16:
        raise InvalidArgument("traceparent has an all-zero parent id, which is invalid: send a random one", field="traceparent")
    if tracestate is None:
        return
    if not isinstance(tracestate, str):
        raise InvalidArgument("tracestate must be a string", field="tracestate")
    if len(tracestate) > MAX_TRACESTATE_LENGTH:
        raise InvalidArgument(
            f"tracestate is {len(tracestate)} characters, over the {MAX_TRACESTATE_LENGTH}-character limit; drop members",
            field="tracestate",
        )
    members = [x.strip(" \t") for x in tracestate.split(",")]
    members = [x for x in members if x]
    if not members:
        raise InvalidArgument("tracestate is empty; leave it out or send key=value members", field="tracestate")
    if len(members) > MAX_TRACESTATE_MEMBERS:
        raise InvalidArgument(
            f"tracestate has {len(members)} members; the limit is {MAX_TRACESTATE_MEMBERS}", field="tracestate"
        )
    for member in members:
        key, eq, value = member.partition("=")
        if not eq or _TRACESTATE_KEY.fullmatch(key) is None or _TRACESTATE_VALUE.fullmatch(value) is None:
            raise InvalidArgument(
                f"tracestate member {member[:80]!r} is malformed: send comma-separated key=value members "
                "(key: lowercase letters, digits, _-*/ and one @; value: printable ASCII without , or =)",
                field="tracestate",
            )


def validate_payload(payload: Any, max_bytes: int) -> None:
    """Raise :class:`InvalidArgument` unless ``payload`` is a publishable JSON object."""
    check_payload_shape(payload)
    check_size(encode_event(payload, EventMeta(), 0), max_bytes)


def check_payload_shape(payload: Any) -> None:
    """A JSON object whose keys are non-empty and outside the reserved prefix."""
    if not isinstance(payload, dict):
        raise InvalidArgument(
            f"payload must be a JSON object (got {type(payload).__name__}); wrap scalars, e.g. {{\"value\": ...}}",
            field="payload",
        )
    for key in payload:
        if not isinstance(key, str) or key == "":
            raise InvalidArgument("payload keys must be non-empty strings", field="payload")
        if key.startswith(RESERVED_PREFIX):
            raise InvalidArgument(
                f"payload key {key!r} uses the reserved prefix {RESERVED_PREFIX!r}; rename it", field="payload"
            )


def check_size(fields: dict[str, str], max_bytes: int) -> None:
    """The payload's size is measured on its wire form (keys and values, UTF-8), reserved fields
    excluded; in the ``seed`` format there are none, so every field counts."""
    size = 0
    for k, v in fields.items():
        if k[:1] == "_" and k.startswith(RESERVED_PREFIX):
            continue
        if k.isascii() and v.isascii():
            size += len(k) + len(v)
        else:
            size += len(k.encode()) + len(v.encode())
    if size > max_bytes:
        raise InvalidArgument(
            f"payload is {size} bytes, over the {max_bytes}-byte limit (FRIDAY_MAX_PAYLOAD_BYTES); "
            "store large content elsewhere and publish a reference",
            field="payload",
        )


def _encode_value(value: Any) -> tuple[str, str | None]:
    """Return (text, tag). Text is what the seed's publisher would have written."""
    t = type(value)
    if t is str:
        return value, None
    if t is int:
        return str(value), "i"
    if isinstance(value, str):
        return value, None
    if isinstance(value, bool):  # before int: bool is an int
        return str(value), "b"
    if isinstance(value, int):
        return str(value), "i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument("payload contains NaN or Infinity, which JSON cannot carry", field="payload")
        return repr(value), "f"
    if value is None:
        return "None", "n"
    if isinstance(value, (dict, list)):
        return _dumps(value), "j"
    raise InvalidArgument(f"unsupported payload value of type {type(value).__name__}", field="payload")


def _seed_value(value: Any) -> str:
    """One value as the seed's publisher writes it: ``json.dumps(v)`` (its defaults) for a dict
    or a list, ``str(v)`` for anything else (``True`` -> ``"True"``, ``None`` -> ``"None"``)."""
    if isinstance(value, (dict, list)):
        try:
            # allow_nan=False only refuses: for every JSON value the text is json.dumps(value)'s
            return json.dumps(value, allow_nan=False)
        except ValueError as exc:
            raise InvalidArgument(_NAN_REFUSED, field="payload") from exc
        except TypeError as exc:
            raise InvalidArgument(f"payload is not JSON-serialisable: {exc}", field="payload") from exc
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(_NAN_REFUSED, field="payload")
    if value is not None and not isinstance(value, (str, int, float)):
        raise InvalidArgument(f"unsupported payload value of type {type(value).__name__}", field="payload")
    return str(value)


def encode_seed(payload: JSONObject) -> dict[str, str]:
    """The ``seed`` format: the seed publisher's fields for ``payload``, nothing else (no metadata).
    An empty payload is refused: a stream entry needs a field, and this format adds none."""
    if not payload:
        raise InvalidArgument(
            "payload is empty; a stream in the seed wire format writes only the payload's keys, and an entry needs one: "
            "add a key (e.g. {\"event\": ...})",
            field="payload",
        )
    return {key: _seed_value(value) for key, value in payload.items()}


def encode_event(payload: JSONObject, meta: EventMeta, published_at_ms: int, wire_format: str = WIRE_TYPED) -> dict[str, str]:
    """Encode a validated payload (and, in the ``typed`` format, its metadata) into stream entry fields."""
    if wire_format == WIRE_SEED:
        return encode_seed(payload)
    if wire_format != WIRE_TYPED:
        raise ValueError(f"unknown wire format {wire_format!r}")
    fields: dict[str, str] = {}
    types: dict[str, str] = {}
    for key, value in payload.items():
        if type(value) is str:  # the common case, without a call
            fields[key] = value
            continue
        text, tag = _encode_value(value)
        fields[key] = text
        if tag is not None:
            types[key] = tag
    fields[F_TS] = str(published_at_ms)
    if types:
        fields[F_TYPES] = _dumps(types)
    if meta.event_id is not None:
        fields[F_EVENT_ID] = meta.event_id
    if meta.source is not None:
        fields[F_SOURCE] = meta.source
    if meta.correlation_id is not None:
        fields[F_CORRELATION] = meta.correlation_id
    if meta.traceparent is not None:
        fields[F_TRACEPARENT] = meta.traceparent
        if meta.tracestate is not None:
            fields[F_TRACESTATE] = meta.tracestate
    return fields


def _decode_typed(text: str, tag: str | None) -> Any:
    if tag is None:
        return text
    try:
        if tag == "b":
            return text == "True"
        if tag == "i":
            return int(text)
        if tag == "f":
            return float(text)
        if tag == "n":
            return None
        if tag == "j":
            return json.loads(text)
    except ValueError:
        return text  # a field edited by hand: hand it over as text rather than fail the delivery
    return text


def _decode_legacy(text: str) -> Any:
    if text.startswith(("{", "[")):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, (dict, list)):
            return value
    return text


def entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def decode_event(entry_id: str, fields: dict[str, str]) -> tuple[JSONObject, EventMeta]:
    """Decode stream entry fields (written by the sidecar or by the seed's publisher).

    Without ``_friday_ts`` the entry is the seed's: every key is payload, ``_friday*`` ones too."""
    ts = fields.get(F_TS)
    if ts is None:
        payload = {k: _decode_legacy(v) for k, v in fields.items()}
        return payload, EventMeta(published_at_ms=entry_ms(entry_id), encoding="legacy")
    types: dict[str, str] = {}
    raw_types = fields.get(F_TYPES)
    if raw_types:
        try:
            parsed = json.loads(raw_types)
            if isinstance(parsed, dict):
                types = parsed
        except ValueError:
            types = {}
    payload = {k: _decode_typed(v, types.get(k)) for k, v in fields.items() if not k.startswith(RESERVED_PREFIX)}
    try:
        published = int(ts)
    except ValueError:
        published = entry_ms(entry_id)
    meta = EventMeta(
        event_id=fields.get(F_EVENT_ID),
        source=fields.get(F_SOURCE),
        correlation_id=fields.get(F_CORRELATION),
        published_at_ms=published,
        encoding="friday",
        traceparent=fields.get(F_TRACEPARENT),
        tracestate=fields.get(F_TRACESTATE),
    )
    return payload, meta


def strip_dead_letter_fields(fields: dict[str, str]) -> dict[str, str]:
    """The original entry's fields, as they were before dead-lettering (and before an earlier
    replay marked a ``typed`` entry; a seed entry never gets the marker: its keys are its own)."""
    typed = F_TS in fields
    return {k: v for k, v in fields.items() if not k.startswith(DLQ_PREFIX) and not (typed and k == F_REPLAYED_FROM)}


# --- Pub/Sub channel messages: one JSON object, payload keys plus the same reserved keys ---


def encode_channel_message(payload: JSONObject, meta: EventMeta, published_at_ms: int) -> str:
    body: dict[str, Any] = dict(payload)
    body[F_TS] = published_at_ms
    if meta.event_id is not None:
        body[F_EVENT_ID] = meta.event_id
    if meta.source is not None:
        body[F_SOURCE] = meta.source
    if meta.correlation_id is not None:
        body[F_CORRELATION] = meta.correlation_id
    if meta.traceparent is not None:
        body[F_TRACEPARENT] = meta.traceparent
        if meta.tracestate is not None:
            body[F_TRACESTATE] = meta.tracestate
    return _dumps(body)


def decode_channel_message(data: str) -> tuple[JSONObject, EventMeta]:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {"message": data}, EventMeta(encoding="legacy")
    payload = {k: v for k, v in body.items() if not k.startswith(RESERVED_PREFIX)}
    ts = body.get(F_TS)
    if not isinstance(ts, int):
        return payload, EventMeta(encoding="legacy")
    return payload, EventMeta(
        event_id=body.get(F_EVENT_ID),
        source=body.get(F_SOURCE),
        correlation_id=body.get(F_CORRELATION),
        published_at_ms=ts,
        encoding="friday",
        traceparent=body.get(F_TRACEPARENT),
        tracestate=body.get(F_TRACESTATE),
    )


# --- JSON text from clients (HTTP bodies, gRPC payload_json): one parser for both doors ---

_KEY_SHOWN = 60


class _RepeatedKey(dict):  # type: ignore[type-arg]
    """An object whose text repeated a key (kept only until the parse is refused)."""

    __slots__ = ("key",)


def _repeat_at(value: Any, prefix: str) -> tuple[str, str]:
    """(key, path) of the first object in document order that repeats a key (one exists)."""
    stack: list[tuple[Any, str]] = [(value, prefix)]
    while stack:
        node, path = stack.pop()
        if isinstance(node, _RepeatedKey):
            return node.key, path
        if isinstance(node, dict):
            children = [(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()]
        elif isinstance(node, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))
    raise AssertionError("a repeated key was seen but not found")  # pragma: no cover


def loads_json(text: str, *, prefix: str = "", root: str = "the request body", root_field: str = "body",
               parse_constant: Any = None) -> Any:
    """``json.loads(text)``, refusing an object that repeats a key, at any depth.

    Everything else is exactly ``json.loads``: integers of any size stay ints, floats are
    floats, strings as decoded, the same errors (``ValueError``, ``RecursionError``), and
    ``parse_constant`` as there (``NaN``/``Infinity`` are accepted unless it refuses them).
    A repeated key raises :class:`InvalidArgument` naming the key and where it is: ``root``
    at the top, else the path from ``prefix`` (``payload.nested``, ``events[1].payload``);
    the error's field is that path (``root_field`` at the top)."""
    repeated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal repeated
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        repeated = True
        out = _RepeatedKey(obj)
        seen: set[str] = set()
        for k, _ in items:
            if k in seen:
                out.key = k
                break
            seen.add(k)
        return out

    value = json.loads(text, object_pairs_hook=pairs, parse_constant=parse_constant)
    if not repeated:
        return value
    key, path = _repeat_at(value, prefix)
    shown = json.dumps(key[:_KEY_SHOWN] + ("..." if len(key) > _KEY_SHOWN else ""), ensure_ascii=False)
    at_top = path == prefix
    raise InvalidArgument(
        f"duplicate key {shown} in {root if at_top else path}: a JSON object must name each key once; remove the repeat",
        field=root_field if at_top else path,
    )
