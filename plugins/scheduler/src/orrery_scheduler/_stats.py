"""Scheduler statistics: counts by state, and wait / run time percentiles."""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

__all__ = ["Stats", "percentiles"]

#: Percentiles reported for wait and run times.
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


def percentiles(samples: list[float], points: tuple[float, ...] = PERCENTILES) -> dict[str, float]:
    """Nearest-rank percentiles of ``samples`` (empty dict when there are none)."""
    if not samples:
        return {}
    ordered = sorted(samples)
    out: dict[str, float] = {}
    for point in points:
        rank = max(0, min(len(ordered) - 1, int(round(point / 100.0 * len(ordered))) - 1))
        out[f"p{point:g}"] = ordered[rank]
    out["max"] = ordered[-1]
    out["mean"] = sum(ordered) / len(ordered)
    return out


class Stats:
    """Rolling wait (ready to start) and run (start to finish) times of the last
    ``window`` tasks, plus lifetime totals of outcomes on this node."""

    __slots__ = ("_run", "_wait", "totals")

    def __init__(self, window: int = 10_000) -> None:
        self._wait: deque[float] = deque(maxlen=window)
        self._run: deque[float] = deque(maxlen=window)
        self.totals: Counter[str] = Counter()

    def waited(self, seconds: float) -> None:
        self._wait.append(seconds)

    def ran(self, seconds: float) -> None:
        self._run.append(seconds)

    def count(self, outcome: str, n: int = 1) -> None:
        self.totals[outcome] += n

    def report(self, by_state: dict[str, int]) -> dict[str, Any]:
        """JSON-able statistics."""
        return {
            "by_state": by_state,
            "totals": dict(self.totals),
            "wait_seconds": percentiles(list(self._wait)),
            "run_seconds": percentiles(list(self._run)),
        }
