"""What a topic routes to, as the publisher's hot loop sees it."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from orrery.sdk import Event, Handler

__all__ = ["Target", "Waiter", "is_async_handler"]


class Waiter(Protocol):
    """What a publisher awaits when a target could not take an event at once: a full
    subscriber queue, or a durable subscription's pending journal append."""

    async def _put_waiting(self, event: Event) -> None: ...


def is_async_handler(handler: Handler) -> bool:
    """Whether calling ``handler`` returns a coroutine (functions, partials, methods,
    objects with an ``async def __call__``)."""
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - we want the method itself
    return call is not None and inspect.iscoroutinefunction(call)


class Target:
    """Something a topic routes to: a subscription, a queue group or a request inbox.

    The publisher's hot loop reads ``_direct`` and, when it is true, calls ``_handler``
    itself; everything else goes through `_offer`.
    """

    __slots__ = ("_direct", "_handler", "_seq")

    def __init__(self, handler: Handler, seq: int) -> None:
        self._direct = False
        self._handler = handler
        self._seq = seq

    def _offer(self, event: Event) -> Waiter | None:
        """Deliver or enqueue ``event``; return what to wait on (a full queue), if any."""
        raise NotImplementedError

    def _failed_inline(self, event: Event, exc: Exception) -> None:
        raise NotImplementedError

    def _returned(self, event: Event, result: Any) -> None:
        raise NotImplementedError
