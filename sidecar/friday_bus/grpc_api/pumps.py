"""The one shape of the long-lived calls (Subscribe, PublishStream, SubscribeChannel).

Background loops feed one bounded queue; the call drains it. :func:`until_stopped` runs the
loops as tasks and yields what they put, until the call ends:

* a loop puts :class:`End` - the call ends cleanly (``End()``) or with its error;
* a loop raises - the error ends the call (the error interceptor maps it to a status code);
* ``stopping`` is set (the sidecar shuts down) - the loops are cancelled (they take nothing
  more from the client or Redis), what they already queued is still yielded, then the call
  ends with ``stopped``. (Subscribe gives no ``stopping``: on shutdown its loops keep
  applying acks and end the call themselves once no delivery is in flight.)
* the client goes away (the call is cancelled) or the caller stops iterating.

Whatever the end, the loops are cancelled and awaited before :func:`until_stopped` returns
(close it with :func:`contextlib.aclosing` so that this also holds when the caller's own
generator is closed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class End:
    """Queue item: end the call - cleanly (``error`` None) or with ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def _guarded(loop: Coroutine[Any, Any, None], out: asyncio.Queue[Any]) -> None:
    try:
        await loop
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # noqa: BLE001 - handed to the call, which the interceptor maps
        await out.put(End(exc))


async def until_stopped(
    name: str,
    out: asyncio.Queue[Any],
    loops: Mapping[str, Coroutine[Any, Any, None]],
    *,
    stopping: asyncio.Event | None = None,
    stopped: BaseException | None = None,
) -> AsyncGenerator[Any, None]:
    """Run ``loops`` (role -> coroutine; tasks named ``{name}-{role}``) feeding ``out``; yield
    their items until an :class:`End` (raising its error, if any) or ``stopping`` (raising
    ``stopped``)."""
    tasks = [asyncio.create_task(_guarded(coro, out), name=f"{name}-{role}") for role, coro in loops.items()]

    async def watch(event: asyncio.Event, error: BaseException) -> None:
        await event.wait()
        for t in tasks:
            t.cancel()  # take no more: what was not taken is not handled
        await out.put(End(error))

    watcher = None
    if stopping is not None:
        assert stopped is not None, "give `stopped` (the error that ends the call) with `stopping`"
        watcher = asyncio.create_task(watch(stopping, stopped), name=f"{name}-watch")
    try:
        while True:
            item = await out.get()
            if isinstance(item, End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        everything = [*tasks, watcher] if watcher is not None else tasks
        for t in everything:
            t.cancel()
        for t in everything:
            with contextlib.suppress(BaseException):
                await t


async def unless_stopped(aw: Awaitable[T], stopping: asyncio.Event) -> asyncio.Future[T] | None:
    """Await ``aw`` unless ``stopping`` is set first. Returns the finished future of ``aw`` (its
    result, or its error), or None when ``stopping`` came first: ``aw`` is then cancelled and
    awaited (a Redis read abandoned so)."""
    fut = asyncio.ensure_future(aw)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([fut, stop], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not fut.done():
            fut.cancel()
            with contextlib.suppress(BaseException):
                await fut
    return None if fut.cancelled() else fut
