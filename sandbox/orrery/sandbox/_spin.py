"""Spin-then-park for the worker: poll briefly for the next frame before sleeping.

Waking a process that sleeps in ``epoll_wait`` costs a CPU wake-up, which on virtual
machines with halt polling off is tens of microseconds — more than the whole round trip
costs otherwise. While frames arrive back to back, the worker keeps polling its socket for
a short window after answering and so is already awake when the next one comes.

The window adapts so an idle or sparse plugin burns no CPU: a spin that times out turns
spinning off, and it turns back on only when a frame arrives within one window of the
last answer (the way guest halt polling grows and shrinks its window).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from time import perf_counter

__all__ = ["SpinWait"]


class SpinWait:
    """Decides whether, and how long, to poll before going back to the event loop."""

    __slots__ = ("_idle_since", "active", "window")

    def __init__(self, window_us: float) -> None:
        self.window = window_us / 1e6
        self.active = self.window > 0
        self._idle_since = 0.0

    def woke(self) -> None:
        """The event loop woke us for a frame: resume spinning if it came soon enough."""
        if not self.active and self.window > 0:
            self.active = perf_counter() - self._idle_since <= self.window

    def wait(self, readable: Callable[[], bool]) -> bool:
        """Poll ``readable`` for up to one window; True as soon as it says so."""
        if not self.active:
            self._idle_since = perf_counter()
            return False
        now = perf_counter()
        deadline = now + self.window
        while now < deadline:
            if readable():
                return True
            # Let anything else runnable on this CPU go first: spinning is only worth it
            # on a CPU nobody else wants.
            os.sched_yield()
            now = perf_counter()
        self.active = False
        self._idle_since = now
        return False
