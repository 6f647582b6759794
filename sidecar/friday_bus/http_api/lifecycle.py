"""Waiting calls (long-poll reads, ``next``, SSE) that end cleanly on client disconnect and on shutdown.

A long poll whose client goes away is cancelled. If its read had already taken deliveries from
Redis (the response was not sent yet), they are released (EventBus.release): redelivered at
once, to any consumer of the group, with their delivery count as it was - the client never
saw them, so they do not count. The Redis command a long poll is waiting on is never cancelled
(:func:`long_poll_read`): it finishes, and what it took is released too. Nothing is acked on
its behalf. On shutdown, waiting calls are
interrupted (503, retriable) and SSE streams are closed so the server can drain in-flight
requests within the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..core.bus import EventBus
from ..core.errors import FridayError, Unavailable
from ..core.models import ChannelMessage, Delivery
from .errors import error_body
from .schemas import metadata

log = logging.getLogger("friday.http")
T = TypeVar("T")

SSE_KEEPALIVE_S = 15.0
SSE_QUEUE_MAX = 1000

# Releases still running after their request was cancelled: kept referenced until done.
_GIVING_BACK: set[asyncio.Future[None]] = set()


class ClientGone(Exception):
    """The client disconnected while its call was waiting."""


class Lifecycle:
    """Shutdown signal shared by the waiting routes."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    @property
    def is_stopping(self) -> bool:
        return self.stopping.is_set()

    def begin_shutdown(self) -> None:
        self.stopping.set()

    def shutting_down_error(self) -> Unavailable:
        return Unavailable("the sidecar is shutting down; retry in a moment")

    async def interruptible(
        self, request: Request, call: Awaitable[T], abandoned: Callable[[T], Awaitable[None]] | None = None
    ) -> T:
        """Await ``call`` unless the client disconnects (ClientGone) or shutdown begins (Unavailable).

        ``abandoned`` gets the result of a call that finished although nobody will receive it: the
        client disconnected while it finished (or the request itself was cancelled), or it is found
        gone right after. It runs before ClientGone is raised (shielded from the request's cancellation)."""
        if self.is_stopping:
            if asyncio.iscoroutine(call):
                call.close()
            raise self.shutting_down_error()
        task = asyncio.ensure_future(call)
        gone = asyncio.ensure_future(wait_disconnect(request.receive))
        stop = asyncio.ensure_future(self.stopping.wait())
        delivered = False
        try:
            await asyncio.wait({task, gone, stop}, return_when=asyncio.FIRST_COMPLETED)
            client_left = gone.done() and not gone.cancelled()
            finished = task.done() and not task.cancelled() and task.exception() is None
            if finished and abandoned is not None and not client_left:
                client_left = await request.is_disconnected()
            if finished and not client_left:
                delivered = True
                return task.result()
        finally:
            gone.cancel()
            stop.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if not delivered and abandoned is not None and not task.cancelled() and task.exception() is None:
                giving = asyncio.ensure_future(_give_back(abandoned, task.result()))
                _GIVING_BACK.add(giving)
                giving.add_done_callback(_GIVING_BACK.discard)
                await asyncio.shield(giving)
        if not task.cancelled() and task.done() and not client_left:
            return task.result()  # failed: raise its error
        if client_left:
            raise ClientGone()
        raise self.shutting_down_error()


async def long_poll_read(bus: EventBus, stream: str, group: str, consumer: str, count: int, block_ms: int) -> list[Delivery]:
    """``bus.read`` for a long poll its client may leave: in reads of at most the claim interval
    (FRIDAY_CLAIM_INTERVAL_MS), until one returns deliveries or ``block_ms`` is over. Cancelling
    it never cancels the read under way (Redis may be answering it: the entries of a cancelled
    answer would stay pending and count one more delivery); that read finishes in the background
    and whatever it took is released (EventBus.release_when_read)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + block_ms / 1000
    slice_ms = max(1, bus.settings.claim_interval_ms)
    while True:
        remaining = max(0, round((deadline - loop.time()) * 1000))
        reading = asyncio.ensure_future(bus.read(stream, group, consumer, count, min(remaining, slice_ms)))
        try:
            deliveries = await asyncio.shield(reading)
        except asyncio.CancelledError:
            bus.release_when_read(stream, group, consumer, reading)
            raise
        if deliveries or remaining <= slice_ms:
            return deliveries


async def _give_back(abandoned: Callable[[T], Awaitable[None]], result: T) -> None:
    try:
        await abandoned(result)
    except Exception as exc:  # noqa: BLE001 - the client is gone: nobody to tell; logged
        log.warning("could not give back what a departed long poll had read (%s); it is redelivered after the claim time", exc)


async def wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def channel_message_data(m: ChannelMessage) -> dict[str, Any]:
    return {"channel": m.channel, "payload": m.payload, "metadata": metadata(m.meta).model_dump()}


class SSEResponse(Response):
    """``text/event-stream`` of channel messages: ``event: message`` lines, ``: keepalive`` comments
    (one right away, then every ``keepalive_s``), ``event: error`` then end if the subscription
    fails; ends on client disconnect and on shutdown."""

    media_type = "text/event-stream"

    def __init__(self, messages: AsyncIterator[ChannelMessage], lifecycle: Lifecycle, keepalive_s: float = SSE_KEEPALIVE_S) -> None:
        # No super().__init__: it would render an empty body and announce Content-Length: 0.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.messages = messages
        self.lifecycle = lifecycle
        self.keepalive_s = keepalive_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(SSE_QUEUE_MAX)
        dropped = 0

        async def pump() -> None:
            nonlocal dropped
            try:
                async for msg in self.messages:
                    try:
                        queue.put_nowait(("message", msg))
                    except asyncio.QueueFull:
                        dropped += 1
                        if dropped == 1 or dropped % 1000 == 0:
                            log.warning("SSE client too slow: %d channel messages dropped", dropped)
            except FridayError as exc:
                await queue.put(("error", exc))
            except Exception as exc:
                log.error("channel subscription failed", exc_info=exc)
                await queue.put(("error", FridayError(f"channel subscription failed ({type(exc).__name__})")))
            else:
                await queue.put(("end", None))

        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
        pump_task = asyncio.create_task(pump())
        gone = asyncio.create_task(wait_disconnect(receive))
        stop = asyncio.create_task(self.lifecycle.stopping.wait())
        get: asyncio.Task[tuple[str, Any]] | None = None
        client_left = False
        try:
            while True:
                if get is None:
                    get = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({get, gone, stop}, timeout=self.keepalive_s, return_when=asyncio.FIRST_COMPLETED)
                if get in done:
                    kind, item = get.result()
                    get = None
                    if kind == "message":
                        await send({"type": "http.response.body", "body": _sse("message", channel_message_data(item)), "more_body": True})
                        continue
                    if kind == "error":
                        await send({"type": "http.response.body", "body": _sse("error", error_body(
                            item.kind.value, item.message, retriable=item.retriable, field=item.field)), "more_body": True})
                    break
                if gone in done:
                    client_left = True
                    break
                if stop in done:
                    await send({"type": "http.response.body", "body": b": shutdown\n\n", "more_body": True})
                    break
                await send({"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True})
        finally:
            for t in (get, gone, stop, pump_task):
                if t is not None:
                    t.cancel()
            await asyncio.gather(*(t for t in (get, gone, stop, pump_task) if t is not None), return_exceptions=True)
            aclose = getattr(self.messages, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):  # the subscription is going away anyway
                    await aclose()
        if not client_left:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
