"""The long-lived PublishStream call of a client: every publish of a :class:`FridayClient`
(with ``streaming_publish``) goes over one call, answered by ``ref``; events sent one after
another are written in that order. The call is opened on the first publish and reopened on
the next one after it broke."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import TYPE_CHECKING, Any

import grpc

from ._proto import eventbus_pb2 as pb
from ._status import RETRY_CODES
from .errors import FridayError

if TYPE_CHECKING:
    from .client import FridayClient


class StreamBroken(Exception):
    """The PublishStream call ended before answering; ``rpc_error`` says how (None: cleanly)."""

    def __init__(self, rpc_error: grpc.aio.AioRpcError | None = None) -> None:
        super().__init__(rpc_error.details() if rpc_error is not None else "the publish stream ended")
        self.rpc_error = rpc_error

    @property
    def retriable(self) -> bool:
        return self.rpc_error is None or self.rpc_error.code() in RETRY_CODES


class PublishStream:
    """One long-lived PublishStream call shared by every publish of a client; reopened on demand."""

    def __init__(self, client: FridayClient) -> None:
        self.client = client
        self.call: Any = None
        self.refs = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[pb.PublishStreamResponse]] = {}
        self.lock = asyncio.Lock()
        self.reader: asyncio.Task[None] | None = None

    async def send(self, msg: pb.PublishRequest) -> pb.PublishStreamResponse:
        loop = asyncio.get_running_loop()
        async with self.lock:  # writes of one call must not overlap
            if self.call is None:
                self.call = self.client._stub.PublishStream(metadata=self.client._metadata)
                self.reader = loop.create_task(self._read(self.call), name="friday-publish-stream")
            call = self.call
            ref = next(self.refs)
            fut: asyncio.Future[pb.PublishStreamResponse] = loop.create_future()
            self.waiting[ref] = fut
            try:
                await call.write(pb.PublishStreamRequest(ref=ref, event=msg))
            except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError) as exc:
                self.waiting.pop(ref, None)
                if self.call is call:
                    self.call = None
                raise StreamBroken(exc if isinstance(exc, grpc.aio.AioRpcError) else None) from None
        if self.client.timeout_s is None:
            return await fut
        timer = loop.call_later(self.client.timeout_s, self._expire, ref)
        try:
            return await fut
        finally:
            timer.cancel()

    def _expire(self, ref: int) -> None:
        fut = self.waiting.pop(ref, None)
        if fut is not None and not fut.done():
            fut.set_exception(FridayError(f"the sidecar did not answer the publish within {self.client.timeout_s} s; "
                                          "it may or may not have been written"))

    async def _read(self, call: Any) -> None:
        broken = StreamBroken()
        try:
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    break
                fut = self.waiting.pop(resp.ref, None)
                if fut is not None and not fut.done():
                    fut.set_result(resp)
        except grpc.aio.AioRpcError as exc:
            broken = StreamBroken(exc)
        except asyncio.CancelledError:
            pass
        finally:
            if self.call is call:
                self.call = None
            waiting, self.waiting = self.waiting, {}
            for f in waiting.values():
                if not f.done():
                    f.set_exception(broken)

    async def close(self) -> None:
        call, self.call = self.call, None
        if call is not None:
            call.cancel()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader
