"""The handler timeout of one subscription: one timer, re-armed only when it fires.

Arming a timer per delivery (``asyncio.timeout``) costs microseconds, more than the bus's
own work per event; instead each attempt records when it began (a clock read), and one
timer per subscription checks the running attempt when it fires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Watchdog"]


class Watchdog:
    """Cancels (through ``cancel``) an attempt still running ``timeout`` seconds after
    it began; `expired` then tells the worker why it was cancelled."""

    __slots__ = ("_attempt", "_cancel", "_clock", "_handle", "_started", "fired", "timeout")

    def __init__(self, timeout: float, cancel: Callable[[], bool]) -> None:
        self.timeout = timeout
        self._cancel = cancel
        self._attempt = 0
        self._started = 0.0  # 0.0: no attempt running
        #: The number of the attempt cancelled for taking too long (0: none).
        self.fired = 0
        self._handle: asyncio.TimerHandle | None = None
        self._clock: Callable[[], float] | None = None  # the loop's, once running

    def begin(self) -> int:
        """An attempt starts now; returns its number (for `end`)."""
        self._attempt += 1
        clock = self._clock
        if clock is None:
            clock = self._clock = asyncio.get_running_loop().time
        self._started = clock()
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_at(
                self._started + self.timeout, self._check
            )
        return self._attempt

    def end(self, attempt: int) -> None:
        """Attempt ``attempt`` is over."""
        if self._attempt == attempt:
            self._started = 0.0

    def expired(self) -> bool:
        """Whether the running attempt was cancelled for taking too long (once)."""
        if self.fired and self.fired == self._attempt:
            self.fired = 0
            return True
        return False

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        started = self._started
        if not started:
            return
        loop = asyncio.get_running_loop()
        due = started + self.timeout
        if loop.time() < due:
            self._handle = loop.call_at(due, self._check)
        elif self._cancel():
            self.fired = self._attempt
            self._started = 0.0
