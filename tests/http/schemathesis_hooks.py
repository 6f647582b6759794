"""Schemathesis hooks for tests/http/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

Long polls: a valid ``block_ms`` (0-30000) is capped to 200 ms just before the call, so a
generated ``block_ms=30000`` on an empty stream does not make each example wait 30 s. Values
outside the valid range are left alone: the server must still reject them (400).

Rewind: the core refuses a target beyond both the stream's last entry and now (400: the group
would skip every future event), which the schema cannot say. A schema-valid target in the
future (``to_time_ms`` after now, ``to_id`` at or after now) is moved to the past just before
the call; the refusal itself is tested in tests/core/test_rewind_limits.py and by each door.
"""

from __future__ import annotations

import re
import time
from typing import Any

import schemathesis

BLOCK_CAP_MS = 200
_ENTRY_ID = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")


def _cap(container: Any) -> None:
    if isinstance(container, dict):
        v = container.get("block_ms")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and BLOCK_CAP_MS < v <= 30_000:
            container["block_ms"] = BLOCK_CAP_MS
        elif isinstance(v, str) and v.isdigit() and BLOCK_CAP_MS < int(v) <= 30_000:
            container["block_ms"] = str(BLOCK_CAP_MS)


def _past_rewind(case: Any) -> None:
    body = case.body
    if not str(getattr(case, "path", "")).endswith("/rewind") or not isinstance(body, dict):
        return
    now = int(time.time() * 1000) - 1000
    v = body.get("to_time_ms")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and now < v <= 2**53 - 1:  # 1e12 too (a JSON integer)
        body["to_time_ms"] = now
    v = body.get("to_id")
    if isinstance(v, str) and (m := _ENTRY_ID.fullmatch(v)) and now <= int(m.group(1)) < 2**64:
        body["to_id"] = f"{now - 60_000}-0"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    _cap(case.body)
    _cap(case.query)
    _past_rewind(case)



