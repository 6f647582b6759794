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


# KNOWN CORE BUGS (sidecar/friday_bus/core/bus.py, not the HTTP door), reported to the core's owner and
# pinned by strict-xfail tests in tests/http/test_known_core_bugs.py. Only these exact 500s are dropped;
# the schemathesis summary counts them as "dropped by filter_failure". Remove each entry once fixed
# (its xfail test then fails as XPASS and points here).
KNOWN_CORE_500S = (
    # nack on a topology group that was destroyed: the NACK script's NOGROUP is not classified (→ 404 expected)
    ("/nack", "NOGROUP"),
    # rewind on a stream that does not exist: XGROUP SETID's "requires the key to exist" is not classified
    ("/rewind", "requires the key to exist"),
)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if getattr(response, "status_code", None) != 500:
        return True
    text = getattr(response, "text", "") or ""
    path = getattr(case, "formatted_path", "") or ""
    return not any(path.endswith(suffix) and marker in text for suffix, marker in KNOWN_CORE_500S)
