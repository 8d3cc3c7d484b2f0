"""What a topic routes to, as the publisher's hot loop sees it."""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from orrery.sdk import Event, Handler

__all__ = ["Target", "Waiter", "is_async_handler"]


class Waiter(Protocol):
    """What a publisher awaits when a target could not take an event at once: a full
    subscriber queue, or a durable subscription's pending journal append."""

    async def put_waiting(self, event: Event) -> None: ...


def is_async_handler(handler: Handler) -> bool:
    """Whether calling ``handler`` returns a coroutine (functions, partials, methods,
    objects with an ``async def __call__``)."""
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - we want the method itself
    return call is not None and inspect.iscoroutinefunction(call)


def _never_inline(event: Event) -> None:  # pragma: no cover - inline is False for these
    raise AssertionError("this target is never called inline")


class Target:
    """Something a topic routes to: a subscription, a queue group, a durable feed or a
    request inbox.

    The publisher's hot loop reads ``inline`` and, when it is true, calls ``handler``
    itself (reporting to `failed_inline` / `returned`); everything else goes through
    `offer`. Only the target's own class changes ``inline``.
    """

    __slots__ = ("handler", "inline", "seq")

    def __init__(self, handler: Handler = _never_inline, seq: int = 0) -> None:
        self.inline = False
        self.handler = handler
        #: Orders targets by creation, so fan-out follows subscription order.
        self.seq = seq

    def offer(self, event: Event) -> Waiter | None:
        """Deliver or enqueue ``event``; return what to wait on (a full queue), if any."""
        raise NotImplementedError

    def failed_inline(self, event: Event, exc: Exception) -> None:
        """The inline call of ``handler`` on ``event`` raised ``exc``."""
        raise NotImplementedError

    def returned(self, event: Event, result: Any) -> None:
        """The inline call of ``handler`` on ``event`` returned ``result`` (not None)."""
        raise NotImplementedError
