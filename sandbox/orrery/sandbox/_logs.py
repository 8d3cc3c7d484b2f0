"""Kernel side: log records from a worker are rate-limited and truncated.

A worker may log as fast as it can write; the kernel writes at most ``log_rate`` records
per second on average (bursts of ``log_burst``) and at most ``log_line_max`` characters
per record. What it drops is counted and reported as one line, "N log records dropped",
before the next record it writes (and when the plugin stops).
"""

from __future__ import annotations

import logging
import time

__all__ = ["LogGate"]


class LogGate:
    """A token bucket in front of one plugin's logger."""

    def __init__(
        self, logger: logging.Logger, *, rate: float, burst: int, line_max: int, name: str
    ) -> None:
        self._log = logger
        self._rate = rate
        self._burst = float(burst)
        self._line_max = line_max
        self._name = name
        self._tokens = float(burst)
        self._last = time.monotonic()
        self.dropped = 0

    def write(self, level: object, message: object) -> None:
        """Log one record from the worker, unless over the rate."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            self.dropped += 1
            return
        self._tokens -= 1.0
        self.flush()
        text = message if isinstance(message, str) else repr(message)
        if len(text) > self._line_max:
            cut = len(text) - self._line_max
            text = f"{text[: self._line_max]}... ({cut} more characters dropped)"
        self._log.log(level if isinstance(level, int) else logging.INFO, "%s", text)

    def flush(self) -> None:
        """Report what was dropped since the last report, if anything."""
        if self.dropped:
            dropped, self.dropped = self.dropped, 0
            self._log.warning(
                "%d log records dropped: sandboxed plugin %r logs more than log_rate=%g "
                "records/s (log_burst=%d); raise them in [plugins.%s.sandbox] or log less",
                dropped, self._name, self._rate, int(self._burst), self._name,
            )
