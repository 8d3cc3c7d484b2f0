"""Time-ordered event ids (UUIDv7, RFC 9562) that are cheap enough for the hot path.

Within one generator ids are strictly increasing: the 48-bit millisecond timestamp
leads, and a counter fills the last 48 bits ("fixed-length dedicated counter", RFC 9562
section 6.2 method 1). The random ``rand_a`` and variant bits are redrawn every
millisecond and the counter starts at a random offset, so ids from different processes
do not collide.

Formatting is the expensive part of an id, so the text of everything but the counter's
low byte is cached and the low byte comes from a 256-entry table.
"""

from __future__ import annotations

import itertools
import random
import threading
import time

__all__ = ["EventIdGenerator", "new_event_id"]

_MASK40 = (1 << 40) - 1
_LOW_BYTE = tuple(f"{i:02x}" for i in range(256))


class EventIdGenerator:
    """Produces UUIDv7 strings; `next_id` takes the caller's ``time.time_ns()`` reading.

    One generator belongs to one thread (the bus's event loop); `new_event_id` guards
    the shared one with a lock.
    """

    __slots__ = ("_counter", "_high", "_high_text", "_next_ms_ns", "_prefix", "_rng")

    def __init__(self) -> None:
        self._rng = random.SystemRandom()
        self._counter = itertools.count(self._rng.getrandbits(40))
        self._next_ms_ns = -1
        self._prefix = ""
        self._high = -1
        self._high_text = ""

    def _refresh(self, ms: int) -> None:
        rand_a = self._rng.getrandbits(12)
        variant = 0x8000 | self._rng.getrandbits(14)
        self._next_ms_ns = (ms + 1) * 1_000_000
        self._prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7{rand_a:03x}-{variant:04x}-"
        self._high = -1

    def next_id(self, now_ns: int) -> str:
        # Only a new millisecond changes the prefix; a clock that steps back keeps the
        # last one, so ids never go backwards.
        if now_ns >= self._next_ms_ns:
            self._refresh(now_ns // 1_000_000)
        count = next(self._counter)
        high = count >> 8
        if high != self._high:
            self._high = high
            self._high_text = f"{self._prefix}{high & _MASK40:010x}"
        return self._high_text + _LOW_BYTE[count & 0xFF]


_default = EventIdGenerator()
_default_lock = threading.Lock()


def new_event_id() -> str:
    """A fresh time-ordered UUIDv7 string (safe to call from any thread)."""
    with _default_lock:
        return _default.next_id(time.time_ns())
