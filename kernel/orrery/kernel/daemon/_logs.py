"""Recent plugin log records, kept for ``GET /v1/logs`` and ``orrery logs``.

A handler on the ``orrery.plugins`` logger (every plugin's ``ctx.log``, sandboxed ones
included: the host re-logs their records under the same name) keeps the newest
records in a ring buffer, each line cut to a bounded length. Readers ask for records
after a sequence number and may wait for new ones (long polling), which is how
``orrery logs --follow`` follows without a busy loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from typing import Any

__all__ = ["PLUGIN_LOGGER", "LogBuffer"]

PLUGIN_LOGGER = "orrery.plugins"
_MAX_MESSAGE = 4096


class LogBuffer(logging.Handler):
    """The newest ``capacity`` records logged by plugins."""

    def __init__(self, capacity: int = 5000) -> None:
        super().__init__(level=logging.DEBUG)
        self._records: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = 0
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._closed = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start collecting: ``loop`` is where waiting readers run."""
        self._loop = loop
        self._changed = asyncio.Event()
        logging.getLogger(PLUGIN_LOGGER).addHandler(self)

    def detach(self) -> None:
        logging.getLogger(PLUGIN_LOGGER).removeHandler(self)
        self._closed = True
        if self._changed is not None:
            self._changed.set()  # waiting readers answer with what they have

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            if len(message) > _MAX_MESSAGE:
                message = message[:_MAX_MESSAGE] + f"... [{len(message) - _MAX_MESSAGE} more]"
            name = record.name
            plugin = name[len(PLUGIN_LOGGER) + 1 :] if name != PLUGIN_LOGGER else ""
            with self._guard:
                self._seq += 1
                self._records.append(
                    {
                        "seq": self._seq,
                        "time": record.created,
                        "level": record.levelname.lower(),
                        "plugin": plugin.split(".", 1)[0],
                        "logger": name,
                        "message": message,
                    }
                )
            self._wake()
        except Exception:  # noqa: BLE001 - logging must never raise into a plugin
            self.handleError(record)

    def _wake(self) -> None:
        loop, changed = self._loop, self._changed
        if loop is None or changed is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            changed.set()
        else:
            loop.call_soon_threadsafe(changed.set)

    @property
    def closed(self) -> bool:
        return self._closed

    def plugins(self) -> set[str]:
        with self._guard:
            return {r["plugin"] for r in self._records}

    def since(
        self, after: int, *, plugin: str | None = None, level: int = 0, limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]:
        """Records after ``after`` (newest ``limit`` of them) and the sequence to ask
        after next time."""
        with self._guard:
            latest = self._seq
            found = [
                r
                for r in self._records
                if r["seq"] > after
                and (plugin is None or r["plugin"] == plugin)
                and logging.getLevelName(r["level"].upper()) >= level
            ]
        return found[-limit:], latest

    async def wait(self, after: int, timeout: float) -> None:
        """Return once a record newer than ``after`` exists, after ``timeout`` seconds,
        or when the buffer is detached."""
        changed = self._changed
        if changed is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._closed:
            with self._guard:
                if self._seq > after:
                    return
                changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                return
