"""Helpers shared by the gRPC door's raw-stub tests."""

from __future__ import annotations

from collections.abc import Awaitable

import grpc
import pytest

MD = (("authorization", "Bearer all-key"),)
"""Metadata of a key with every role (the door fixture's key)."""
INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def expect(code: grpc.StatusCode, call: Awaitable[object]) -> grpc.aio.AioRpcError:
    """The call fails with ``code`` and a plain message (no traceback leaks to the client)."""
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    assert e.value.code() == code, e.value.details()
    details = e.value.details()
    assert "Traceback" not in details and 'File "' not in details
    return e.value


async def expect_invalid(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    return await expect(INVALID, call)


def trailing(err: grpc.aio.AioRpcError) -> dict[str, str]:
    """The call's trailing metadata as a dict (the core's error classification travels there)."""
    return {k: v for k, v in err.trailing_metadata() or ()}
