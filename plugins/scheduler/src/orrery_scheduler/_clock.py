"""Clocks: the scheduler takes wall-clock time from an injected object.

Cron, aging, deadlines, backoff and timeouts all read `Clock.now`, so a test that
injects a `ManualClock` decides exactly when anything becomes due.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


async def wait_set(event: asyncio.Event, timeout: float | None) -> None:
    """Wait until ``event`` is set or ``timeout`` real seconds passed (then it is set).

    Unlike `asyncio.wait_for` on Python 3.11, this never swallows a cancellation that
    arrives together with the timeout.
    """
    if timeout is None:
        await event.wait()
        return
    timer = asyncio.get_running_loop().call_later(timeout, event.set)
    try:
        await event.wait()
    finally:
        timer.cancel()


class Clock(Protocol):
    """Wall-clock seconds since the epoch, and a way to sleep until a moment."""

    def now(self) -> float: ...

    async def wait(self, wake: asyncio.Event, until: float | None, poll: float | None) -> None:
        """Return when ``wake`` is set, ``until`` (clock time) is reached, or after
        ``poll`` real seconds, whichever comes first."""


class SystemClock:
    """The real clock (`time.time`)."""

    def now(self) -> float:
        return time.time()

    async def wait(self, wake: asyncio.Event, until: float | None, poll: float | None) -> None:
        delay = poll
        if until is not None:
            left = max(0.0, until - time.time())
            delay = left if delay is None else min(delay, left)
        if delay is not None and delay <= 0:
            return
        await wait_set(wake, delay)


class ManualClock:
    """A clock that moves only when told to; `advance` wakes every waiting scheduler."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wakers: set[asyncio.Event] = set()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` and wake waiting schedulers; the new time."""
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward; pass seconds >= 0")
        self._now += seconds
        for waker in self._wakers:
            waker.set()
        return self._now

    def set(self, when: float) -> float:
        """Jump to ``when`` (not before the current time)."""
        return self.advance(max(0.0, when - self._now))

    async def wait(self, wake: asyncio.Event, until: float | None, poll: float | None) -> None:
        if until is not None and until <= self._now:
            return
        self._wakers.add(wake)
        try:
            # Clock time only moves through advance(), which sets ``wake``; ``poll`` still
            # bounds the wait in real time so a shared journal is re-read.
            await wait_set(wake, poll)
        finally:
            self._wakers.discard(wake)
