"""Schemathesis hooks for tests/http/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

Long polls: a valid ``block_ms`` (0-30000) is capped to 200 ms just before the call, so a
generated ``block_ms=30000`` on an empty stream does not make each example wait 30 s. Values
outside the valid range are left alone: the server must still reject them (400).
"""

from __future__ import annotations

from typing import Any

import schemathesis

BLOCK_CAP_MS = 200


def _cap(container: Any) -> None:
    if isinstance(container, dict):
        v = container.get("block_ms")
        if isinstance(v, (int, float)) and not isinstance(v, bool) and BLOCK_CAP_MS < v <= 30_000:
            container["block_ms"] = BLOCK_CAP_MS
        elif isinstance(v, str) and v.isdigit() and BLOCK_CAP_MS < int(v) <= 30_000:
            container["block_ms"] = str(BLOCK_CAP_MS)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    _cap(case.body)
    _cap(case.query)



