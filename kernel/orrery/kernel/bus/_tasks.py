"""The tasks a bus owns: subscriber workers, durable feeders and short bus tasks."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["BusTasks"]

log = logging.getLogger("orrery.bus")


class BusTasks:
    """Every task runs in a fresh context, so it never looks like (or leaks the context
    variables of) whichever publisher or worker happened to start it."""

    __slots__ = ("_feeders", "_short", "_workers")

    def __init__(self) -> None:
        self._workers: set[asyncio.Task[None]] = set()
        self._short: set[asyncio.Task[None]] = set()
        self._feeders: set[asyncio.Task[None]] = set()

    @property
    def idle(self) -> bool:
        """No worker and no short task left."""
        return not self._workers and not self._short

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A short task (an append, a dead letter, a save): `running` lists it."""
        self._start(coro, name, self._short)

    def start_worker(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A subscription's worker."""
        return self._start(coro, name, self._workers)

    def start_feeder(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task that runs until its feed closes (cancelled, not awaited, at stop)."""
        return self._start(coro, f"orrery.bus {name}", self._feeders)

    def running(self) -> list[asyncio.Task[None]]:
        """Short tasks still running, except the caller's own."""
        current = asyncio.current_task()
        return [t for t in self._short if t is not current and not t.done()]

    async def cancel_all(self) -> None:
        """Cancel every task but the caller's own, and wait for them to end."""
        current = asyncio.current_task()
        tasks = [t for t in (*self._workers, *self._short, *self._feeders) if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _start(
        self, coro: Coroutine[Any, Any, None], name: str, into: set[asyncio.Task[None]]
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(
            coro, name=name, context=contextvars.Context()
        )
        into.add(task)
        task.add_done_callback(lambda done: self._done(done, into))
        return task

    @staticmethod
    def _done(task: asyncio.Task[None], into: set[asyncio.Task[None]]) -> None:
        into.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bus task %s crashed", task.get_name(), exc_info=task.exception())
