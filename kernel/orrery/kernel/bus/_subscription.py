"""One subscriber: its bounded queue, its worker task, retries and dead-lettering.

Delivery has two paths. A sync handler that is idle (nothing queued, nothing running) is
called inline by the publisher: nothing is ahead of the event, so order is kept, and the
event never touches a queue. Otherwise the event is appended to the subscriber's queue
and its worker task (created on first use) delivers it. The worker also runs retries,
so a failing handler never blocks its publisher and never reorders its own events.

The queue is bounded: a publisher that finds it full waits in line for a slot (FIFO, so
concurrent publishers keep their order), which is the backpressure DESIGN §4 asks for.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import TYPE_CHECKING, Any

from orrery.sdk import Event, Handler

from ._causation import current_event, current_worker
from ._failures import record_failure
from ._target import Target, Waiter, is_async_handler

if TYPE_CHECKING:
    from ._client import BusClient
    from ._memory import MemoryBus

__all__ = ["MemorySubscription"]

#: An event handed to the worker after a first inline attempt: the event, the attempts
#: already made, and the awaitable a "sync" handler returned (still to be awaited), if any.
_Resume = tuple[Event, int, Any]


class MemorySubscription(Target):
    """A live subscription on a `MemoryBus` (implements `orrery.sdk.Subscription`)."""

    __slots__ = (
        "_active",
        "_backoff",
        "_bus",
        "_capacity",
        "_client",
        "_draining",
        "_group",
        "_held",
        "_idle_waiters",
        "_max_attempts",
        "_parked_waiters",
        "_pattern",
        "_queue",
        "_reserved",
        "_resume",
        "_space_waiters",
        "_successor",
        "_sync",
        "_task",
        "_wakeup",
        "_working",
    )

    def __init__(
        self,
        bus: MemoryBus,
        client: BusClient,
        pattern: str,
        handler: Handler,
        group: str | None,
        seq: int,
    ) -> None:
        super().__init__(handler, seq)
        self._bus = bus
        self._client = client
        self._pattern = pattern
        self._group = group
        self._sync = not is_async_handler(handler)
        self._direct = self._sync and not client._held
        self._active = True
        self._draining = False
        self._capacity = bus.queue_size
        self._max_attempts = bus.max_attempts
        self._backoff = bus.retry_backoff
        self._queue: deque[Event] = deque()
        # Slots handed to publishers that waited for room but have not appended yet.
        self._reserved = 0
        self._space_waiters: deque[asyncio.Future[None]] = deque()
        self._idle_waiters: list[asyncio.Future[None]] = []
        # Hot swap (see _handover.py): a held subscription queues but does not deliver;
        # a taken-over one forwards publishers still waiting for room to its successor.
        self._held = client._held
        self._successor: MemorySubscription | None = None
        self._parked_waiters: list[asyncio.Future[None]] = []
        self._resume: _Resume | None = None
        self._working = False
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None

    # -- the Subscription protocol -------------------------------------------------------

    @property
    def pattern(self) -> str:
        """The subject pattern this subscription matches."""
        return self._pattern

    @property
    def group(self) -> str | None:
        """The queue group, or None for a fan-out subscription."""
        return self._group

    @property
    def durable(self) -> str | None:
        """Always None: the memory bus has no durable subscriptions."""
        return None

    @property
    def active(self) -> bool:
        """True until the subscription is unsubscribed (or finishes draining)."""
        return self._active

    @property
    def owner(self) -> str:
        """The source of the client that subscribed (``orrery://<node>/<plugin>``)."""
        return self._client.source

    @property
    def pending(self) -> int:
        """Events queued for this subscriber and not yet handed to its handler."""
        return len(self._queue)

    @property
    def handler(self) -> Handler:
        """The handler events are delivered to."""
        return self._handler

    def unsubscribe(self) -> None:
        """Stop delivery now; events still queued for this subscriber are dropped."""
        if not self._active:
            return
        self._active = False
        self._direct = False
        self._draining = False
        self._queue.clear()
        self._resume = None
        self._reserved = 0
        # Publishers waiting for room are released; they see the subscription is gone.
        for waiter in self._space_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._space_waiters.clear()
        self._bus._detach(self)
        self._client._forget(self)
        self._notify_idle(force=True)
        _release(self._parked_waiters)
        task = self._task
        self._task = None
        if task is not None and not task.done():
            if _running_task() is task:
                # Unsubscribing from inside its own handler: let the handler finish; the
                # worker loop sees the subscription is inactive and returns.
                self._wake()
            else:
                task.cancel()

    async def drain(self) -> None:
        """Stop taking new events, deliver what is queued, then unsubscribe."""
        if not self._active:
            return
        if not self._draining:
            self._draining = True
            self._direct = False
            self._bus._detach(self)
        if self._task is not None and _running_task() is self._task:
            # Waiting here would wait for ourselves: the worker unsubscribes once idle.
            return
        await self.wait_idle()
        self.unsubscribe()

    def __repr__(self) -> str:
        group = f" group={self._group!r}" if self._group is not None else ""
        state = "active" if self._active else "inactive"
        return (
            f"<MemorySubscription {self._pattern!r} owner={self._client.source!r}{group} "
            f"{state} pending={len(self._queue)}>"
        )

    # -- delivery ------------------------------------------------------------------------

    def is_idle(self) -> bool:
        """Nothing queued, nothing running, no publisher waiting for room."""
        return (
            not self._queue
            and self._resume is None
            and not self._working
            and self._reserved == 0
            and not self._space_waiters
        )

    async def wait_idle(self) -> None:
        """Return once `is_idle` (or the subscription is gone)."""
        waiter = self.idle_waiter()
        if waiter is not None:
            await waiter

    def idle_waiter(self) -> asyncio.Future[None] | None:
        """A future resolved when the subscription is next idle (None if it is now)."""
        if not self._active or self.is_idle():
            return None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(waiter)
        return waiter

    def has_room(self) -> bool:
        """Whether `_offer` would accept an event without making the publisher wait."""
        return self._direct or (
            self._active
            and not self._space_waiters
            and len(self._queue) + self._reserved < self._capacity
        )

    def _offer(self, event: Event) -> Waiter | None:
        if self._direct:
            token = current_event.set(event)
            try:
                result = self._handler(event)
            except Exception as exc:
                self._failed_inline(event, exc)
            else:
                if result is not None:
                    self._returned(event, result)
            finally:
                current_event.reset(token)
            return None
        if not self._active:
            return None
        queue = self._queue
        if self._space_waiters or len(queue) + self._reserved >= self._capacity:
            if current_worker.get() is not self:
                return self
            # The handler publishes to its own full queue: only this worker would make
            # room, so waiting would never end. Accept the event beyond the bound.
        queue.append(event)
        self._kick()
        return None

    async def _put_waiting(self, event: Event) -> None:
        """Wait in line for room in the queue, then append ``event``."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._space_waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                try:
                    self._space_waiters.remove(waiter)
                except ValueError:
                    pass
            elif self._active:
                # We were granted a slot but will not use it: pass it on.
                self._reserved -= 1
                self._grant()
            self._notify_idle()
            raise
        successor = self._successor
        if successor is not None:
            # Taken over by a hot-swapped instance while we waited: follow the event there.
            while successor._successor is not None:
                successor = successor._successor
            full = successor._offer(event)
            if full is not None:
                await full._put_waiting(event)
            return
        if not self._active:
            return
        self._reserved -= 1
        self._queue.append(event)
        self._kick()

    def _grant(self) -> None:
        """Hand free slots to publishers waiting for room, first come first served."""
        waiters = self._space_waiters
        room = self._capacity - len(self._queue) - self._reserved
        while waiters and room > 0:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._reserved += 1
                room -= 1

    def _failed_inline(self, event: Event, exc: Exception) -> None:
        if not record_failure(self, event, exc, 1):
            self._direct = False
            self._resume = (event, 1, None)
            self._kick()

    def _returned(self, event: Event, result: Any) -> None:
        if inspect.isawaitable(result):
            # A handler that looked sync returned an awaitable: the worker awaits it
            # before anything queued behind it, so order is kept.
            self._direct = False
            self._resume = (event, 1, result)
            self._kick()
        elif event.replyto is not None:
            self._bus._answer(event.replyto, result)

    def _kick(self) -> None:
        """Make sure a worker exists and is awake to look at the queue."""
        if self._task is None:
            self._task = self._bus._start_worker(self._run(), self)
        else:
            self._wake()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    def _notify_idle(self, *, force: bool = False) -> None:
        if self._idle_waiters and (force or self.is_idle()):
            _release(self._idle_waiters)

    async def _run(self) -> None:
        """The worker: deliver queued events one at a time, in order, until unsubscribed."""
        current_worker.set(self)
        loop = asyncio.get_running_loop()
        queue = self._queue
        while self._active:
            if self._held:
                self._working = False
                _release(self._parked_waiters)
                wakeup = self._wakeup = loop.create_future()
                await wakeup
                continue
            resume = self._resume
            if resume is not None:
                self._resume = None
                self._working = True
                await self._deliver(*resume)
            elif queue:
                event = queue.popleft()
                if self._space_waiters:
                    self._grant()
                self._working = True
                await self._deliver(event, 0, None)
            else:
                self._working = False
                if self._draining:
                    self.unsubscribe()
                    return
                self._direct = self._sync
                self._notify_idle()
                _release(self._parked_waiters)
                wakeup = self._wakeup = loop.create_future()
                await wakeup
        self._working = False

    async def _deliver(self, event: Event, attempts: int, pending: Any) -> None:
        """Run the handler on ``event`` until it succeeds or attempts run out."""
        current_event.set(event)
        handler = self._handler
        while True:
            if attempts and pending is None:
                await asyncio.sleep(self._backoff * 2 ** (attempts - 1))
                if not self._active:
                    return
            try:
                if pending is not None:
                    awaitable, pending = pending, None
                    result = await awaitable
                elif self._sync:
                    attempts += 1
                    result = handler(event)
                    if result is not None and inspect.isawaitable(result):
                        result = await result
                else:
                    attempts += 1
                    result = await handler(event)
            except asyncio.CancelledError as exc:
                if _being_cancelled():
                    raise  # unsubscribe or stop: the worker itself is cancelled
                # The handler raised CancelledError on its own (e.g. it awaited something
                # that was cancelled): a failure like any other, not the end of the worker.
                if record_failure(self, event, exc, attempts):
                    return
                continue
            except Exception as exc:
                if record_failure(self, event, exc, attempts):
                    return
                continue
            if result is not None and event.replyto is not None:
                self._bus._answer(event.replyto, result)
            return


def _release(waiters: list[asyncio.Future[None]]) -> None:
    """Resolve and forget every waiter in ``waiters``."""
    if waiters:
        pending = waiters[:]
        waiters.clear()
        for waiter in pending:
            if not waiter.done():
                waiter.set_result(None)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _running_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: called from plain sync code
        return None
