"""Clocks: the metrics machinery takes time from an injected callable."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Clock", "ManualClock"]

#: Seconds since the epoch, like `time.time`; injected so tests control time.
Clock = Callable[[], float]


class ManualClock:
    """A clock that moves only when told to, for deterministic tests and replays."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; returns the new time."""
        self.now += seconds
        return self.now
