"""The client's error mapping (gRPC status + trailing metadata -> typed errors) and its retry
table, without a sidecar: failures are built as grpc.aio.AioRpcError values."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from friday_bus_client import (
    BacklogFull,
    Conflict,
    FridayClient,
    FridayError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from friday_bus_client._status import (
    MD_FIELD,
    MD_KIND,
    RETRY_CODES,
    STATUS_BY_KIND,
    from_error_message,
    from_rpc_error,
    status_code,
)
from friday_bus_client.errors import ErrorKind

C = grpc.StatusCode


def rpc_error(code: grpc.StatusCode, details: str = "what to fix", **md: str) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata(*[(k, v) for k, v in md.items()])
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)


@pytest.mark.parametrize(("kind", "cls"), [
    ("invalid_argument", InvalidArgument), ("not_found", NotFound), ("conflict", Conflict),
    ("backlog_full", BacklogFull), ("unavailable", Unavailable), ("internal", FridayError),
])
def test_the_sidecar_classification_wins(kind, cls):
    code = STATUS_BY_KIND[ErrorKind(kind)]
    err = from_rpc_error(rpc_error(code, "bad stream", **{MD_KIND: kind, MD_FIELD: "stream"}))
    assert type(err) is cls
    assert err.message == "bad stream" and err.field == "stream"
    assert err.grpc_code == code  # type: ignore[attr-defined]
    assert err.retriable is (kind in ("backlog_full", "unavailable"))


@pytest.mark.parametrize(("code", "cls"), [
    (C.INVALID_ARGUMENT, InvalidArgument), (C.NOT_FOUND, NotFound), (C.FAILED_PRECONDITION, Conflict),
    (C.UNAVAILABLE, Unavailable), (C.INTERNAL, FridayError), (C.OUT_OF_RANGE, InvalidArgument),
    # gRPC's own limit (message too large) when the sidecar did not classify it: not a full backlog
    (C.RESOURCE_EXHAUSTED, InvalidArgument),
    (C.UNAUTHENTICATED, Unauthenticated), (C.PERMISSION_DENIED, PermissionDenied),
    (C.DEADLINE_EXCEEDED, FridayError), (C.UNKNOWN, FridayError),
])
def test_without_classification_the_code_decides(code, cls):
    err = from_rpc_error(rpc_error(code, ""))
    assert type(err) is cls
    assert err.message == code.name  # no details: the code's name, never an empty message
    assert err.field is None and err.grpc_code == code  # type: ignore[attr-defined]


def test_auth_codes_are_their_own_classes_even_with_a_kind():
    err = from_rpc_error(rpc_error(C.UNAUTHENTICATED, "no key", **{MD_KIND: "invalid_argument"}))
    assert type(err) is Unauthenticated and not err.retriable
    err = from_rpc_error(rpc_error(C.PERMISSION_DENIED, "role", **{MD_KIND: "invalid_argument"}))
    assert type(err) is PermissionDenied and not err.retriable


def test_a_kind_this_version_does_not_know_falls_back_to_the_code():
    err = from_rpc_error(rpc_error(C.NOT_FOUND, "x", **{MD_KIND: "from-a-newer-sidecar"}))
    assert type(err) is NotFound
    err = from_error_message("from-a-newer-sidecar", "x")
    assert type(err) is FridayError and err.grpc_code == C.INTERNAL  # type: ignore[attr-defined]
    assert status_code("from-a-newer-sidecar") == C.INTERNAL


def test_errors_inside_stream_messages_get_the_code_of_their_kind():
    for kind, code in STATUS_BY_KIND.items():
        err = from_error_message(kind.value, "m", "field")
        assert err.kind == kind and err.grpc_code == code and err.field == "field"  # type: ignore[attr-defined]
    assert from_error_message("not_found", "m").field is None


def test_retry_table():
    # only UNAVAILABLE is retried (unary calls) or reconnected on (streams); a full backlog is
    # retriable for the caller but never retried by the client on its own
    assert RETRY_CODES == {C.UNAVAILABLE}
    assert status_code(ErrorKind.UNAVAILABLE) in RETRY_CODES
    assert all(code not in RETRY_CODES for kind, code in STATUS_BY_KIND.items() if kind != ErrorKind.UNAVAILABLE)
    assert len(set(STATUS_BY_KIND.values())) == len(STATUS_BY_KIND) == len(ErrorKind)


class FailingStub:
    """Stands in for the generated stub: each call fails with the next code (then answers)."""

    def __init__(self, codes: list[grpc.StatusCode]) -> None:
        self.codes = list(codes)
        self.calls = 0

    def __getattr__(self, method: str):
        async def call(request, metadata=None, timeout=None):
            self.calls += 1
            if self.codes:
                raise rpc_error(self.codes.pop(0), f"{method} failed")
            return "answer"
        return call


def run_call(codes: list[grpc.StatusCode], retries: int) -> tuple[object, int]:
    async def main():
        client = FridayClient("127.0.0.1:1", retries=retries, backoff_initial_s=0.001, backoff_max_s=0.002)
        stub = FailingStub(codes)
        client._stub = stub  # type: ignore[assignment]
        try:
            try:
                return await client._call("Status", object()), stub.calls
            except FridayError as exc:
                return exc, stub.calls
        finally:
            await client.close()
    return asyncio.run(main())


def test_unary_calls_retry_unavailable_a_bounded_number_of_times():
    assert run_call([C.UNAVAILABLE, C.UNAVAILABLE], retries=2) == ("answer", 3)
    err, calls = run_call([C.UNAVAILABLE] * 3, retries=2)
    assert isinstance(err, Unavailable) and calls == 3


@pytest.mark.parametrize("code", [C.NOT_FOUND, C.RESOURCE_EXHAUSTED, C.INTERNAL, C.UNAUTHENTICATED, C.DEADLINE_EXCEEDED])
def test_unary_calls_raise_other_codes_at_once(code):
    err, calls = run_call([code], retries=5)
    assert isinstance(err, FridayError) and calls == 1


def test_backoff_grows_with_jitter_and_is_capped():
    async def main():
        client = FridayClient("127.0.0.1:1", backoff_initial_s=0.1, backoff_max_s=1.0)
        try:
            return [client._backoff(a) for a in range(8) for _ in range(20)]
        finally:
            await client.close()
    waits = asyncio.run(main())
    first, third, late = waits[:20], waits[40:60], waits[-20:]
    assert all(0.05 <= w <= 0.1 for w in first)
    assert all(0.2 <= w <= 0.4 for w in third)
    assert all(0.5 <= w <= 1.0 for w in late)
    assert len(set(first)) > 1  # jitter
