"""Background tasks owned by a plugin and cancelled when it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["TaskOwner"]

T = TypeVar("T")


class TaskOwner:
    """Tracks the tasks one plugin spawned; `cancel_all` ends them."""

    def __init__(self, owner: str, log: logging.Logger) -> None:
        self._owner = owner
        self._log = log
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        if self._closed:
            coro.close()
            raise RuntimeError(f"plugin {self._owner!r} is stopped; it cannot spawn tasks")
        task = asyncio.get_running_loop().create_task(
            coro, name=f"{self._owner}:{name or getattr(coro, '__name__', 'task')}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # A crashed background task must not pass silently: it usually means the
            # plugin stopped doing part of its job.
            self._log.error("background task %s crashed: %s", task.get_name(), exc, exc_info=exc)

    async def cancel_all(self, timeout: float) -> None:
        """Cancel every task and wait (up to ``timeout``) for them to finish."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                self._log.warning(
                    "task %s ignored cancellation for %.1fs", task.get_name(), timeout
                )
