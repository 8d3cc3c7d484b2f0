"""Journal subscriptions: catch up from the database, then follow live appends.

Each subscription is one task that reads the stream from the database from the last
version it delivered, then sleeps until an append to that stream wakes it. Reading from
the database on every wake (instead of pushing events through a queue) means a slow
handler never grows memory, and no event is skipped or repeated however appends and
wake-ups interleave.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from orrery.sdk import JournalEvent

__all__ = ["JournalSubscription", "SubscriptionHub"]

log = logging.getLogger("orrery.kernel.storage")

#: Reads a stream from a version on (inclusive), in version order.
StreamReader = Callable[[str, int], AsyncIterator[JournalEvent]]


class SubscriptionHub:
    """Owns every subscription task of one storage; wakes them after appends."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], set[asyncio.Event]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, namespace: str, stream: str) -> None:
        """Wake the subscribers of ``stream`` (called after an append committed)."""
        wakers = self._waiting.get((namespace, stream))
        if wakers:
            for waker in wakers:
                waker.set()

    def notify_all(self) -> None:
        """Wake every subscriber (when it is unknown which streams changed)."""
        for wakers in self._waiting.values():
            for waker in wakers:
                waker.set()

    def register(self, namespace: str, stream: str, waker: asyncio.Event) -> None:
        self._waiting.setdefault((namespace, stream), set()).add(waker)

    def unregister(self, namespace: str, stream: str, waker: asyncio.Event) -> None:
        wakers = self._waiting.get((namespace, stream))
        if wakers is not None:
            wakers.discard(waker)
            if not wakers:
                del self._waiting[(namespace, stream)]

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Cancel every subscription task and wait until they have all stopped."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._waiting.clear()


class JournalSubscription:
    """A running journal subscription (implements `orrery.sdk.Subscription`).

    The handler (sync or async) gets every event of the stream from ``from_version`` on,
    in version order, one at a time. A handler that raises is logged and the
    subscription moves on to the next event, as on the bus.
    """

    def __init__(
        self,
        hub: SubscriptionHub,
        namespace: str,
        stream: str,
        handler: Callable[[JournalEvent], Any],
        from_version: int,
        reader: StreamReader,
    ) -> None:
        self._hub = hub
        self._namespace = namespace
        self._stream = stream
        self._handler = handler
        self._next_version = max(from_version, 1)
        self._reader = reader
        self._waker = asyncio.Event()
        self._draining = False
        self._stopped = False
        hub.register(namespace, stream, self._waker)
        self._task = hub.spawn(self._follow(), name=f"journal-subscription:{namespace}/{stream}")

    def __repr__(self) -> str:
        state = "active" if self.active else "stopped"
        return f"<JournalSubscription {self._namespace}/{self._stream} {state}>"

    @property
    def pattern(self) -> str:
        """The stream this subscription follows."""
        return self._stream

    @property
    def group(self) -> str | None:
        return None

    @property
    def durable(self) -> str | None:
        return None

    @property
    def active(self) -> bool:
        return not (self._stopped or self._draining or self._task.done())

    def unsubscribe(self) -> None:
        """Stop now; an event being handled is interrupted."""
        self._stopped = True
        self._hub.unregister(self._namespace, self._stream, self._waker)
        self._task.cancel()

    async def drain(self) -> None:
        """Deliver every event appended so far, then stop."""
        self._draining = True
        self._waker.set()
        try:
            await asyncio.shield(self._task)
        finally:
            self._hub.unregister(self._namespace, self._stream, self._waker)

    async def _follow(self) -> None:
        try:
            while True:
                # Clear before reading: an append that lands while we read sets it again,
                # so the wait below returns at once and we read the new events. Likewise
                # a drain only ends after a pass that *started* once it was asked for,
                # since a pass already under way may have missed the latest appends.
                self._waker.clear()
                draining = self._draining
                async for event in self._reader(self._stream, self._next_version):
                    await self._deliver(event)
                    self._next_version = event.version + 1
                if draining:
                    return
                await self._waker.wait()
        except Exception:
            # Nobody awaits this task, so say why it stopped instead of losing the error.
            log.exception(
                "journal subscription to %s/%s stopped at version %d",
                self._namespace,
                self._stream,
                self._next_version,
            )
        finally:
            self._hub.unregister(self._namespace, self._stream, self._waker)

    async def _deliver(self, event: JournalEvent) -> None:
        try:
            result = self._handler(event)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "journal subscriber %r failed on %s/%s version %d; continuing with the next",
                self._handler,
                self._namespace,
                self._stream,
                event.version,
            )
