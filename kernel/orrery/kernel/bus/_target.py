"""What a topic routes to, as the publisher's hot loop sees it."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from orrery.sdk import Event, Handler

if TYPE_CHECKING:
    from ._subscription import MemorySubscription

__all__ = ["Target", "is_async_handler"]


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

    def _offer(self, event: Event) -> MemorySubscription | None:
        """Deliver or enqueue ``event``; return the subscription to wait on if full."""
        raise NotImplementedError

    def _failed_inline(self, event: Event, exc: Exception) -> None:
        raise NotImplementedError

    def _returned(self, event: Event, result: Any) -> None:
        raise NotImplementedError
