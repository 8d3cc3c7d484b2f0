"""One subscriber: its inbox, its worker task, retries, timeouts and hot-swap state.

Delivery has two paths. A sync handler that is idle (nothing queued, nothing running) is
called inline by the publisher: nothing is ahead of the event, so order is kept. Otherwise
the event goes to the subscriber's `Inbox` and its worker task (created on first use)
delivers it, with retries (`run_attempts`), so a failing handler never blocks its
publisher nor reorders its events. `_update_inline` alone opens and closes the inline path.
A handler awaited longer than ``handler_timeout`` is cancelled (`Watchdog`): a failed
attempt, so the queue moves on. Hot swap (DESIGN §5): `hold` stops delivery (events keep
queueing), `resume` undoes it, `inherit` moves a held subscription's backlog to its
successor, which publishers waiting for room in the old inbox follow.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from orrery.sdk import Event, Handler

from ._attempts import run_attempts
from ._causation import current_event, current_worker, release_all, running_task
from ._host import DurableLink, SubscriptionHost
from ._inbox import Inbox
from ._target import Target, Waiter, is_async_handler
from ._watchdog import Watchdog

__all__ = ["MemorySubscription"]

#: An event handed to the worker after a first inline attempt: the event, the attempts
#: already made, and the awaitable a "sync" handler returned (still to be awaited), if any.
_Resume = tuple[Event, int, Any]


class MemorySubscription(Target):
    """A live subscription (implements `orrery.sdk.Subscription`); with ``feed``, a
    member of a durable subscription whose events come from that feed."""

    __slots__ = (
        "_active",
        "_can_inline",
        "_current",
        "_draining",
        "_feed",
        "_group",
        "_held",
        "_host",
        "_idle_waiters",
        "_inbox",
        "_owner",
        "_parked_waiters",
        "_pattern",
        "_release",
        "_resume",
        "_successor",
        "_sync",
        "_task",
        "_wakeup",
        "_watchdog",
        "_working",
    )

    def __init__(
        self,
        host: SubscriptionHost,
        owner: str,
        pattern: str,
        handler: Handler,
        *,
        group: str | None = None,
        seq: int = 0,
        held: bool = False,
        release: Callable[[MemorySubscription], None] | None = None,
        feed: DurableLink | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(handler, seq)
        self._host = host
        self._owner = owner
        self._pattern = pattern
        self._group = group
        self._release = release
        self._feed = feed
        self._sync = not is_async_handler(handler)
        # A durable member is never inline: the worker acknowledges once the handler
        # returned, which the publisher's inline path has no hook for.
        self._can_inline = self._sync and feed is None
        timeout = timeout if timeout is not None else host.handler_timeout
        self._watchdog = None if timeout is None else Watchdog(timeout, self._cancel_attempt)
        self._active = True
        self._draining = False
        self._held = held
        self._inbox = Inbox(host.queue_size)
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._successor: MemorySubscription | None = None
        self._parked_waiters: list[asyncio.Future[None]] = []
        self._resume: _Resume | None = None
        self._current: Event | None = None  # being handled by the worker
        self._working = False
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._update_inline()

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
        """The durable name (the position and backlog it shares), or None."""
        return None if self._feed is None else self._feed.name

    @property
    def feed(self) -> DurableLink | None:
        """The durable feed this subscription is a member of, if any."""
        return self._feed

    @property
    def active(self) -> bool:
        """True until the subscription is unsubscribed (or finishes draining)."""
        return self._active

    @property
    def owner(self) -> str:
        """The source of the client that subscribed (``orrery://<node>/<plugin>``)."""
        return self._owner

    @property
    def pending(self) -> int:
        """Events queued for this subscriber and not yet handed to its handler."""
        return len(self._inbox)

    @property
    def held(self) -> bool:
        """Whether delivery is paused by `hold` (a hot swap in progress)."""
        return self._held

    @property
    def is_sync(self) -> bool:
        """Whether the handler is a plain function (it may then be called inline)."""
        return self._sync

    @property
    def worker(self) -> asyncio.Task[None] | None:
        """The task delivering queued events, while there is one."""
        return self._task

    @property
    def timeout(self) -> float | None:
        """Seconds an attempt awaited by the worker may take before it is cancelled."""
        return None if self._watchdog is None else self._watchdog.timeout

    def unsubscribe(self) -> None:
        """Stop delivery now; events still queued for this subscriber are dropped (a
        durable member hands what it did not finish back to its feed)."""
        if not self._active:
            return
        unfinished: list[Event] = []
        if self._current is not None:
            unfinished.append(self._current)
        if self._resume is not None:
            unfinished.append(self._resume[0])
        self._active = False
        self._draining = False
        self._resume = None
        self._update_inline()
        # Publishers waiting for room are released; they see the subscription is gone.
        unfinished.extend(self._inbox.release())
        if self._release is not None:
            self._release(self)
        self._notify_idle(force=True)
        release_all(self._parked_waiters)
        if self._watchdog is not None:
            self._watchdog.close()
        task = self._task
        self._task = None
        if task is not None and not task.done():
            if running_task() is task:
                # Unsubscribing from inside its own handler: let the handler finish; the
                # worker loop sees the subscription is inactive and returns.
                self._wake()
            else:
                task.cancel()
        if unfinished and self._feed is not None:
            self._feed.requeue(unfinished)

    async def drain(self) -> None:
        """Stop taking new events, deliver what is queued, then unsubscribe."""
        if not self._active:
            return
        if not self._draining:
            self._draining = True
            self._update_inline()
            if self._release is not None:
                self._release(self)
        if self._task is not None and running_task() is self._task:
            # Waiting here would wait for ourselves: the worker unsubscribes once idle.
            return
        await self.wait_idle()
        self.unsubscribe()

    def __repr__(self) -> str:
        kind = "DurableSubscription" if self._feed is not None else "MemorySubscription"
        group = f" group={self._group!r}" if self._group is not None else ""
        state = f"{'active' if self._active else 'inactive'} pending={len(self._inbox)}"
        return f"<{kind} {self._pattern!r} owner={self._owner!r}{group} {state}>"

    # -- idleness ------------------------------------------------------------------------

    def is_idle(self) -> bool:
        """Nothing queued, nothing running, no publisher waiting for room."""
        return self._inbox.settled and self._resume is None and not self._working

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

    # -- delivery ------------------------------------------------------------------------

    def has_room(self) -> bool:
        """Whether `offer` would accept an event without making the publisher wait."""
        return self.inline or (self._active and self._inbox.has_room())

    def offer(self, event: Event) -> Waiter | None:
        if self.inline:
            token = current_event.set(event)
            try:
                result = self.handler(event)
            except Exception as exc:
                self.failed_inline(event, exc)
            else:
                if result is not None:
                    self.returned(event, result)
            finally:
                current_event.reset(token)
            return None
        if not self._active:
            return None
        inbox = self._inbox
        if not inbox.put(event):
            if current_worker.get() is not self:
                return self
            # The handler publishes to its own full queue: only this worker would make
            # room, so waiting would never end. Accept it beyond the bound.
            inbox.append(event)
        self._kick()
        return None

    async def put_waiting(self, event: Event) -> None:
        """Wait in line for room in the inbox, then append ``event``."""
        try:
            granted = await self._inbox.wait_for_room()
        except asyncio.CancelledError:
            self._notify_idle()
            raise
        successor = self._successor
        if successor is not None:
            # Taken over by a hot-swapped instance while we waited: follow the event there.
            while successor._successor is not None:
                successor = successor._successor
            full = successor.offer(event)
            if full is not None:
                await full.put_waiting(event)
            return
        if not self._active or not granted:
            return
        self._inbox.fill(event)
        self._kick()

    def failed_inline(self, event: Event, exc: Exception) -> None:
        if not self._host.handle_failure(self, event, exc, 1):
            self._resume = (event, 1, None)
            self._update_inline()
            self._kick()

    def returned(self, event: Event, result: Any) -> None:
        if inspect.isawaitable(result):
            # A handler that looked sync returned an awaitable: the worker awaits it
            # before anything queued behind it, so order is kept.
            self._resume = (event, 1, result)
            self._update_inline()
            self._kick()
        elif event.replyto is not None:
            self._host.answer(event.replyto, result)

    def _update_inline(self) -> None:
        """Open the publisher's inline path exactly when nothing can be ahead of an event."""
        self.inline = (
            self._can_inline
            and self._active
            and not self._draining
            and not self._held
            and not self._working
            and self._resume is None
            and self._inbox.empty
        )

    def _kick(self) -> None:
        """Make sure a worker exists and is awake to look at the queue."""
        if self._task is None:
            task = self._task = self._host.start_worker(
                self._run(), f"orrery.bus worker {self._owner} {self._pattern}"
            )
            task.add_done_callback(self._worker_done)
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
            release_all(self._idle_waiters)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if self._task is not task:
            return  # the normal end: unsubscribe already let go of it
        # Cancelled from outside (not by unsubscribe) or crashed while the subscription
        # is live: forget this worker, so the next event starts a fresh one for the queue.
        # (Not restarted here: at event loop shutdown that would leave a pending task.)
        self._task = None
        self._working = False
        self._update_inline()

    async def _run(self) -> None:
        """The worker: deliver queued events one at a time, in order, until unsubscribed."""
        current_worker.set(self)
        loop = asyncio.get_running_loop()
        inbox, host, watchdog = self._inbox, self._host, self._watchdog
        while self._active:
            if self._held:
                self._working = False
                release_all(self._parked_waiters)
                wakeup = self._wakeup = loop.create_future()
                await wakeup
                continue
            resume = self._resume
            if resume is not None:
                self._resume = None
                event, attempts, pending = resume
            elif not inbox.empty:
                event, attempts, pending = inbox.pop(), 0, None
            else:
                self._working = False
                if self._draining:
                    self.unsubscribe()
                    return
                self._update_inline()
                self._notify_idle()
                release_all(self._parked_waiters)
                wakeup = self._wakeup = loop.create_future()
                await wakeup
                continue
            if not self._working:
                self._working = True
                self._update_inline()
            # Deliver: until handled or given up on (dead-lettered); then a durable member
            # acknowledges. After an unsubscribe it was handed back to the feed instead.
            self._current = event
            try:
                await run_attempts(self, host, watchdog, event, attempts, pending)
            finally:
                self._current = None
            if self._feed is not None and self._active:
                self._feed.acknowledge(event)
        self._working = False

    def _cancel_attempt(self) -> bool:
        """The watchdog's verdict: cancel the running attempt (in the worker task)."""
        task = self._task
        if task is None or not self._active or task.done():
            return False
        task.cancel()
        return True

    # -- hot swap ------------------------------------------------------------------------

    def hold(self) -> asyncio.Future[None] | None:
        """Stop delivery (events keep queueing); returns a future resolved when the
        handler running now finishes, if one is (and it is not the caller itself)."""
        self._held = True
        self._update_inline()
        if self._working and self._task is not None and self._task is not running_task():
            parked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._parked_waiters.append(parked)
            return parked
        return None

    def resume(self) -> None:
        """Undo `hold`: deliver what queued up meanwhile, then carry on as before."""
        if not self._held:
            return
        self._held = False
        if self._task is not None:
            self._wake()  # the worker delivers the backlog, then reopens the inline path
        self._update_inline()

    def inherit(self, old: MemorySubscription) -> int:
        """Move what held ``old`` has queued to the front of this inbox; returns how many.
        Publishers waiting for room in ``old`` follow their events here."""
        moved = old._hand_over(self)
        if moved:
            self._inbox.prepend(moved)
            self._update_inline()
            self._kick()
        return len(moved)

    def _hand_over(self, successor: MemorySubscription) -> list[Event]:
        moved: list[Event] = []
        if self._resume is not None:
            event, _, pending = self._resume
            self._resume = None
            close = getattr(pending, "close", None)
            if close is not None:  # an unawaited coroutine of the old code: discard quietly
                close()
            moved.append(event)
        self._successor = successor
        # Publishers waiting for room wake up and follow to the successor.
        moved.extend(self._inbox.release())
        return moved

