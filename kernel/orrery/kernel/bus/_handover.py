"""Hot swap of a plugin's subscriptions without losing an event (DESIGN §5).

The kernel holds the old instance's client (its subscriptions keep queueing but deliver
nothing), starts the new instance on a *staged* client (its subscriptions exist but are
not routed yet), and then, in one synchronous step, lets the new client take over: each
new subscription inherits the queue of the old one with the same pattern and group, the
old ones stop being routed and the new ones start. Publishers that were waiting for room
in an old queue follow their event to the successor. If the swap is abandoned, `resume`
lets the old subscriptions carry on exactly where they were held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from orrery.sdk import Event

from ._subscription import MemorySubscription, _running_task

__all__ = ["hold", "inherit", "resume"]


def hold(subs: Iterable[MemorySubscription]) -> list[asyncio.Future[None]]:
    """Stop delivery to ``subs``; return futures resolved as running handlers finish."""
    current = _running_task()
    running: list[asyncio.Future[None]] = []
    for sub in subs:
        sub._held = True
        sub._direct = False
        # A handler holding its own client must not wait for itself.
        if sub._working and sub._task is not None and sub._task is not current:
            parked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            sub._parked_waiters.append(parked)
            running.append(parked)
    return running


def resume(subs: Iterable[MemorySubscription]) -> None:
    """Let held ``subs`` deliver again, starting with what queued up meanwhile."""
    for sub in subs:
        if not sub._held:
            continue
        sub._held = False
        if sub._task is not None:
            sub._wake()  # the worker delivers the backlog, then reopens the inline path
        elif sub.active and sub._resume is None and not sub._queue:
            sub._direct = sub._sync


def inherit(new: MemorySubscription, old: MemorySubscription) -> int:
    """Move what ``old`` has queued to the front of ``new``'s queue; returns how many.

    ``old`` must be held, so nothing is being delivered from its queue right now.
    """
    moved: list[Event] = []
    if old._resume is not None:
        event, _, pending = old._resume
        old._resume = None
        close = getattr(pending, "close", None)
        if close is not None:  # an unawaited coroutine of the old code: discard quietly
            close()
        moved.append(event)
    moved.extend(old._queue)
    old._queue.clear()
    old._reserved = 0
    old._successor = new
    # Publishers waiting for room in the old queue wake up and follow to `new`.
    for waiter in old._space_waiters:
        if not waiter.done():
            waiter.set_result(None)
    old._space_waiters.clear()
    if moved:
        new._queue.extendleft(reversed(moved))
        new._direct = False
        new._kick()
    return len(moved)
