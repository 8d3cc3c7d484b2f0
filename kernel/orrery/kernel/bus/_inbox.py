"""A subscriber's bounded queue: the events, the slots granted to publishers that waited
for room, and the publishers still waiting (FIFO, so concurrent publishers keep their
order). This is the backpressure of DESIGN §4."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from orrery.sdk import Event

__all__ = ["Inbox"]


class Inbox:
    """At most ``capacity`` events, plus the slots reserved for waiting publishers."""

    __slots__ = ("_capacity", "_events", "_reserved", "_waiters")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._events: deque[Event] = deque()
        # Slots handed to publishers that waited for room but have not appended yet.
        self._reserved = 0
        # Each resolves to True (a slot is reserved for it) or False (released: the
        # subscription is gone or was taken over; look again).
        self._waiters: deque[asyncio.Future[bool]] = deque()

    def __len__(self) -> int:
        return len(self._events)

    @property
    def empty(self) -> bool:
        """No event queued."""
        return not self._events

    @property
    def settled(self) -> bool:
        """No event queued, no slot reserved, no publisher waiting."""
        return not self._events and self._reserved == 0 and not self._waiters

    def has_room(self) -> bool:
        """Whether an event may be appended now without cutting in line."""
        return not self._waiters and len(self._events) + self._reserved < self._capacity

    def put(self, event: Event) -> bool:
        """Append ``event`` if there is room (without cutting in line); False if not."""
        events = self._events
        if self._waiters or len(events) + self._reserved >= self._capacity:
            return False
        events.append(event)
        return True

    def append(self, event: Event) -> None:
        """Append ``event`` (also beyond the bound: the caller decided it must)."""
        self._events.append(event)

    def prepend(self, events: Iterable[Event]) -> None:
        """Put ``events`` (in order) ahead of everything queued."""
        self._events.extendleft(reversed(list(events)))

    def pop(self) -> Event:
        """The oldest event; its slot goes to the first waiting publisher."""
        event = self._events.popleft()
        if self._waiters:
            self._grant()
        return event

    async def wait_for_room(self) -> bool:
        """Wait in line; True once a slot is reserved (then `fill` it), False if the
        inbox was released meanwhile."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            elif waiter.result():
                # Granted a slot we will not use: pass it on.
                self._reserved -= 1
                self._grant()
            raise

    def fill(self, event: Event) -> None:
        """Append ``event`` into the slot `wait_for_room` reserved."""
        self._reserved -= 1
        self._events.append(event)

    def release(self) -> list[Event]:
        """Empty the inbox: return what was queued; waiting publishers are let go."""
        events = list(self._events)
        self._events.clear()
        self._reserved = 0
        waiters = list(self._waiters)
        self._waiters.clear()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(False)
        return events

    def _grant(self) -> None:
        """Hand free slots to waiting publishers, first come first served."""
        waiters = self._waiters
        room = self._capacity - len(self._events) - self._reserved
        while waiters and room > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                self._reserved += 1
                room -= 1
