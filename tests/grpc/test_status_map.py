"""One ErrorKind -> status code table, owned by the client, used by the sidecar's interceptor."""

from __future__ import annotations

import subprocess
import sys

import grpc
from friday_bus.client import _status
from friday_bus.client.errors import from_error_message
from friday_bus.core.errors import ErrorKind
from friday_bus.grpc_api import interceptors


def test_every_kind_has_one_code_used_by_both_sides():
    assert set(_status.STATUS_BY_KIND) == set(ErrorKind)
    assert interceptors.status_code is _status.status_code
    for kind, code in _status.STATUS_BY_KIND.items():
        assert _status.status_code(kind) == _status.status_code(kind.value) == code
        assert from_error_message(kind.value, "m").grpc_code == code  # type: ignore[attr-defined]
    assert _status.status_code("a-kind-from-a-newer-sidecar") == grpc.StatusCode.INTERNAL


def test_the_client_does_not_import_the_server():
    code = ("import sys, friday_bus.client; "
            "bad = [m for m in sys.modules if m.startswith(('friday_bus.grpc_api', 'friday_bus.http_api', 'friday_bus.server'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
