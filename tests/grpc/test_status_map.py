"""One ErrorKind -> status code table, owned by the client, used by the sidecar's interceptor."""

from __future__ import annotations

import subprocess
import sys

import grpc
from friday_bus.core.errors import ErrorKind
from friday_bus.grpc_api import interceptors
from friday_bus_client import _status
from friday_bus_client._status import from_error_message


def test_every_kind_has_one_code_used_by_both_sides():
    assert set(_status.STATUS_BY_KIND) == set(ErrorKind)
    assert interceptors.status_code is _status.status_code
    for kind, code in _status.STATUS_BY_KIND.items():
        assert _status.status_code(kind) == _status.status_code(kind.value) == code
        assert from_error_message(kind.value, "m").grpc_code == code  # type: ignore[attr-defined]
    assert _status.status_code("a-kind-from-a-newer-sidecar") == grpc.StatusCode.INTERNAL


def test_the_client_does_not_import_the_server():
    """The client distribution imports neither the sidecar nor what only the sidecar needs."""
    code = ("import sys, friday_bus_client; from friday_bus_client import FridayClient, Event, Delivery, Subscription; "
            "import friday_bus_client.client, friday_bus_client.subscription, friday_bus_client.publish_stream; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('friday_bus', 'redis', 'fastapi', 'pydantic')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_server_imports_only_the_shared_part_of_the_client():
    """The sidecar takes errors, models, limits, the generated code and the status table from the
    client distribution, not its calls (so the server does not load the client's machinery)."""
    code = ("import sys; import friday_bus.server, friday_bus.cli, friday_bus.grpc_api.server, friday_bus.http_api; "
            "allowed = ('friday_bus_client', 'friday_bus_client.errors', 'friday_bus_client.models', "
            "'friday_bus_client.limits', 'friday_bus_client._status'); "
            "bad = [m for m in sys.modules if m.startswith('friday_bus_client') and m not in allowed "
            "and not m.startswith('friday_bus_client._proto')]; "
            "assert not bad, bad; assert 'friday_bus_client._status' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_shared_pieces_are_defined_once():
    """The core re-exports the client's classes and limits: the very same objects, not copies."""
    import friday_bus_client
    from friday_bus.core import errors as core_errors
    from friday_bus.core import limits as core_limits
    from friday_bus.core import models as core_models
    from friday_bus_client import errors, limits, models

    for name in ("ErrorKind", "FridayError", "InvalidArgument", "NotFound", "Conflict", "BacklogFull", "Unavailable"):
        assert getattr(core_errors, name) is getattr(errors, name) is getattr(friday_bus_client, name, getattr(errors, name))
        assert getattr(core_errors, name).__module__ == "friday_bus_client.errors"
    for name in ("EventMeta", "PublishResult", "NackResult", "DeadLetter", "ReplayResult", "StreamInfo", "ChannelMessage",
                 "BusStatus", "StreamStatus", "GroupStatus", "ConsumerStatus", "Alert"):
        assert getattr(core_models, name) is getattr(models, name)
    wire = [n for n in vars(limits) if n.isupper()]
    assert "MAX_ACK_IDS" in wire and "TRIM_CHUNK" not in wire
    for name in wire:
        assert getattr(core_limits, name) == getattr(limits, name)
    assert core_limits.TRIM_CHUNK > 0
