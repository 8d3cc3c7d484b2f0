"""Time-ordered event ids (UUIDv7, RFC 9562) that are cheap enough for the hot path.

Within one process ids are strictly increasing: the 48-bit millisecond timestamp leads,
and a process-wide counter fills the last 48 bits ("fixed-length dedicated counter",
RFC 9562 section 6.2 method 1). The random ``rand_a`` and variant bits are redrawn every
millisecond and the counter starts at a random offset, so ids from different processes
do not collide.
"""

from __future__ import annotations

import itertools
import random
import time

__all__ = ["EventIdGenerator", "new_event_id"]

_MASK48 = (1 << 48) - 1


class EventIdGenerator:
    """Produces UUIDv7 strings; `next_id` takes the caller's ``time.time_ns()`` reading."""

    __slots__ = ("_counter", "_ms", "_prefix", "_rng")

    def __init__(self) -> None:
        self._rng = random.SystemRandom()
        self._counter = itertools.count(self._rng.getrandbits(40))
        self._ms = -1
        self._prefix = ""

    def _refresh(self, ms: int) -> str:
        rand_a = self._rng.getrandbits(12)
        variant = 0x8000 | self._rng.getrandbits(14)
        self._ms = ms
        self._prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7{rand_a:03x}-{variant:04x}-"
        return self._prefix

    def next_id(self, now_ns: int) -> str:
        ms = now_ns // 1_000_000
        # A clock that steps back keeps the last prefix, so ids never go backwards.
        prefix = self._prefix if ms <= self._ms else self._refresh(ms)
        return f"{prefix}{next(self._counter) & _MASK48:012x}"


_default = EventIdGenerator()


def new_event_id() -> str:
    """A fresh time-ordered UUIDv7 string."""
    return _default.next_id(time.time_ns())
