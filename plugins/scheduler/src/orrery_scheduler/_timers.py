"""A heap of clock-time alarms (delayed tasks, deadlines, timeouts, schedules).

Alarms are never removed early: whoever handles a due alarm checks that it still
applies (the task may have finished or been rescheduled). That keeps arming O(log n)
and needs no per-task timer objects.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

__all__ = ["Alarm", "Alarms"]

#: (when, tiebreak, kind, subject, token)
Alarm = tuple[float, int, str, Any, int]


class Alarms:
    """Clock-time alarms in due order."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[Alarm] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def arm(self, when: float, kind: str, subject: Any, token: int = 0) -> None:
        """Ring ``kind`` for ``subject`` at ``when``; ``token`` lets the handler tell a
        stale alarm (e.g. the attempt number it was armed for)."""
        heapq.heappush(self._heap, (when, next(self._seq), kind, subject, token))

    def next_due(self) -> float | None:
        """When the earliest alarm rings, or None."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Alarm]:
        """Remove and return every alarm due at ``now``, earliest first."""
        due: list[Alarm] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap))
        return due

    def clear(self) -> None:
        self._heap.clear()
