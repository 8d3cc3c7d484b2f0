"""Clocks: plugins take time from ``ctx.clock`` so tests decide when things happen.

`SystemClock` is the real one (also ``orrery.sdk.SystemClock``). `ManualClock` (also
``orrery.sdk.testing.ManualClock``) moves only when told to, and wakes whatever waits
on it when it does. This module imports nothing but the standard library, so a
plugin's own code may take a `ManualClock` from here without importing pytest.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "wait_event"]


@runtime_checkable
class Clock(Protocol):
    """Where a plugin gets the time and waits for it to pass."""

    def now(self) -> float:
        """Wall-clock seconds since the epoch, like `time.time`."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for measuring durations."""

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` of this clock's time have passed."""

    async def wait(
        self, wake: asyncio.Event, until: float | None, poll: float | None = None
    ) -> None:
        """Return when ``wake`` is set, clock time ``until`` is reached, or after
        ``poll`` real seconds, whichever comes first (``None``: no such bound)."""


async def wait_event(event: asyncio.Event, timeout: float | None) -> None:
    """Wait until ``event`` is set or ``timeout`` real seconds passed (``None``: no limit).

    The event is left as it is on a timeout, so the caller can tell a real wake-up
    from the time running out; a cancellation is never swallowed.
    """
    if event.is_set():
        return
    if timeout is None:
        await event.wait()
        return
    if timeout <= 0:
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([waiter], timeout=timeout)
    finally:
        waiter.cancel()


class SystemClock:
    """The real clock: `time.time`, `time.monotonic`, `asyncio.sleep`."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()

    def __call__(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait(
        self, wake: asyncio.Event, until: float | None, poll: float | None = None
    ) -> None:
        delay = poll
        if until is not None:
            left = max(0.0, until - time.time())
            delay = left if delay is None else min(delay, left)
        await wait_event(wake, delay)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only through `advance` and `set`, which wake its waiters.

    Callable (``clock()`` is ``clock.now()``) so code written against a plain
    ``Callable[[], float]`` takes it too::

        clock = ManualClock()
        async with orrery_kernel(MyPlugin, clock=clock) as k:
            clock.advance(60)      # everything waiting on ctx.clock re-checks the time
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._start = self._now
        self._wakers: set[asyncio.Event] = set()

    def now(self) -> float:
        return self._now

    def __call__(self) -> float:
        return self._now

    def monotonic(self) -> float:
        """Seconds advanced since the clock was made (never goes back)."""
        return self._now - self._start

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and wake every waiter; returns the new time."""
        if seconds < 0:
            raise ValueError(
                f"a ManualClock only moves forward; advance({seconds!r}) needs seconds >= 0"
            )
        self._now += seconds
        for waker in list(self._wakers):
            waker.set()
        return self._now

    def set(self, when: float) -> float:
        """Jump to ``when`` (a moment in the past leaves the clock where it is)."""
        return self.advance(max(0.0, when - self._now))

    @property
    def waiters(self) -> int:
        """How many coroutines are waiting on this clock now (to know a loop is idle)."""
        return len(self._wakers)

    async def wait(
        self, wake: asyncio.Event, until: float | None, poll: float | None = None
    ) -> None:
        if until is not None and until <= self._now:
            return
        self._wakers.add(wake)
        try:
            # Clock time only moves through advance(), which sets ``wake``; ``poll``
            # still bounds the wait in real time (e.g. to re-read a shared journal).
            await wait_event(wake, poll)
        finally:
            self._wakers.discard(wake)

    async def sleep(self, seconds: float) -> None:
        until = self._now + seconds
        wake = asyncio.Event()
        while self._now < until:
            wake.clear()
            await self.wait(wake, until)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"
