"""Context variables that tie an event published inside a handler to the event handled.

`current_event` is set around every handler call (inline in the publisher's task, or in
the subscriber's worker task). Being a context variable, it follows the handler into
anything it awaits and into tasks it creates, so a follow-up event published from any of
them gets ``causationid`` = the handled event's id.

`current_worker` is set once in each subscriber's worker task; it lets the bus see that a
handler is publishing to its own (full) queue, where waiting would wait on itself.
"""

from __future__ import annotations

from contextvars import ContextVar

from orrery.sdk import Event

__all__ = ["current_event", "current_worker", "lineage"]

current_event: ContextVar[Event | None] = ContextVar("orrery_bus_current_event", default=None)
current_worker: ContextVar[object | None] = ContextVar("orrery_bus_current_worker", default=None)


def lineage(parent: Event) -> tuple[str, str]:
    """``(correlationid, causationid)`` for an event caused by ``parent``."""
    return parent.correlationid or parent.id, parent.id
