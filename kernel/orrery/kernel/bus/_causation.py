"""Context variables that tie an event published inside a handler to the event handled.

`current_event` is set around every handler call (inline in the publisher's task, or in
the subscriber's worker task). Being a context variable, it follows the handler into
anything it awaits and into tasks it creates, so a follow-up event published from any of
them gets ``causationid`` = the handled event's id.

`current_worker` is set once in each subscriber's worker task; it lets the bus see that a
handler is publishing to its own (full) queue, where waiting would wait on itself.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

from orrery.sdk import Event

__all__ = ["current_event", "current_worker", "lineage", "release_all", "running_task"]

current_event: ContextVar[Event | None] = ContextVar("orrery_bus_current_event", default=None)
current_worker: ContextVar[object | None] = ContextVar("orrery_bus_current_worker", default=None)


def lineage(parent: Event) -> tuple[str, str]:
    """``(correlationid, causationid)`` for an event caused by ``parent``."""
    return parent.correlationid or parent.id, parent.id


def release_all(waiters: list[asyncio.Future[None]]) -> None:
    """Resolve and forget every waiter in ``waiters``."""
    if waiters:
        pending = waiters[:]
        waiters.clear()
        for waiter in pending:
            if not waiter.done():
                waiter.set_result(None)


def running_task() -> asyncio.Task[Any] | None:
    """The running task, or None when called from plain sync code."""
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop
        return None
