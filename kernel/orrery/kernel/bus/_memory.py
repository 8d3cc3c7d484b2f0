"""The embedded, in-process event bus: lifecycle, request inboxes, dead letters, tasks."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any

from orrery.sdk import Event
from orrery.sdk.errors import InvalidTopic
from orrery.sdk.wire import EventIdGenerator

from ._causation import current_worker, lineage
from ._client import BusClient
from ._durable import DurableFeed, DurableSubscription
from ._durables import DurableRegistry
from ._journal_feed import JournalFeed
from ._routes import RouteTable
from ._subscription import MemorySubscription
from ._target import Target, Waiter
from .errors import BusClosed

if TYPE_CHECKING:
    from orrery.kernel.storage import Storage

__all__ = ["DEADLETTER_PREFIX", "MemoryBus"]

log = logging.getLogger("orrery.bus")

#: Events a subscriber gave up on are republished on ``DEADLETTER_PREFIX + topic``.
DEADLETTER_PREFIX = "orrery.deadletter."

_NEW, _RUNNING, _STOPPING, _STOPPED = "new", "running", "stopping", "stopped"


def _never_called(event: Event) -> None:  # pragma: no cover - an inbox is never inline
    raise AssertionError("an inbox is never called inline")


class _Inbox(Target):
    """Routes an explicit publish on a request's ``replyto`` topic to the waiting request."""

    __slots__ = ("_bus",)

    def __init__(self, bus: MemoryBus) -> None:
        super().__init__(_never_called, 0)
        self._bus = bus

    def _offer(self, event: Event) -> Waiter | None:
        self._bus._answer(event.type, event.data)
        return None


class MemoryBus(DurableRegistry):
    """Publish/subscribe and request/reply inside one process (DESIGN §4).

    Plugins and the kernel talk to it through `client` views, one per source. Delivery
    per subscriber is in publish order through a queue of at most ``queue_size`` events
    (a publisher waits when it is full); a failing handler is retried ``max_attempts``
    times with exponential backoff starting at ``retry_backoff`` seconds, then the event
    is dead-lettered on ``orrery.deadletter.<topic>``.

    ``route_cache_size`` bounds the number of topics whose resolved targets are cached.
    With ``storage``, ``subscribe(..., durable="name")`` keeps matching events in the
    journal until acknowledged (see `JournalFeed`); without it, durable raises
    `DurableNotSupported`.
    """

    #: How each published event leaves the process (None: it does not; see NatsBus).
    #: A plain call returning what to await, if anything, before the publish is done.
    _remote: Callable[[Event], Awaitable[None] | None] | None = None

    def __init__(
        self,
        node_id: str,
        *,
        queue_size: int = 1024,
        max_attempts: int = 3,
        retry_backoff: float = 0.01,
        route_cache_size: int = 4096,
        storage: Storage | None = None,
    ) -> None:
        if not isinstance(node_id, str) or not node_id:
            raise ValueError(f"node_id must be a non-empty string, got {node_id!r}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts!r}")
        if retry_backoff < 0:
            raise ValueError(f"retry_backoff must not be negative, got {retry_backoff!r}")
        if route_cache_size < 1:
            raise ValueError(f"route_cache_size must be at least 1, got {route_cache_size!r}")
        self.node_id = node_id
        self.queue_size = queue_size
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        #: Source of the events the bus publishes itself (dead letters).
        self.source = f"orrery://{node_id}/bus"
        self._state = _NEW
        self._routes = RouteTable(route_cache_size)
        self._ids = EventIdGenerator()
        #: ``next_id(now_ns)``, bound once so the publish path makes a single call.
        self._next_id = self._ids.next_id
        self._clients: dict[BusClient, None] = {}
        self._inboxes: dict[str, asyncio.Future[Any]] = {}
        # Random per bus, so inboxes of two buses bridged later never collide.
        self._inbox_prefix = f"_INBOX.{secrets.token_hex(8)}."
        self._inbox_numbers = itertools.count(1)
        self._inbox_route: tuple[Target, ...] = (_Inbox(self),)
        self._workers: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.storage = storage
        self._feeds: dict[str, DurableFeed] = {}
        self._feeders: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"new"``, ``"running"``, ``"stopping"`` or ``"stopped"``."""
        return self._state

    @property
    def accepting(self) -> bool:
        """Whether publishes are accepted (between `start` and the end of `stop`)."""
        return self._state in (_RUNNING, _STOPPING)

    async def start(self) -> None:
        """Start accepting publishes. A stopped bus cannot be started again."""
        if self._state in (_STOPPING, _STOPPED):
            raise BusClosed(self, "start", "it was stopped; create a new MemoryBus")
        self._state = _RUNNING
        for client in self._clients:
            client._refresh()

    async def stop(self, timeout: float = 5.0) -> None:
        """Deliver everything queued (including follow-up events handlers publish while
        draining), then refuse new publishes and release every subscription and task.

        After ``timeout`` seconds whatever is still queued is dropped, with a warning.
        """
        if self._state == _STOPPED:
            return
        self._state = _STOPPING
        try:
            async with asyncio.timeout(timeout):
                await self._quiesce()
        except TimeoutError:
            left = sum(sub.pending for sub in self.subscriptions)
            log.warning(
                "bus %s: stop() gave up draining after %gs; dropping %d queued event(s)",
                self.node_id,
                timeout,
                left,
            )
        self._state = _STOPPED
        await self._close_feeds()
        current = asyncio.current_task()
        tasks = [
            task for task in (*self._workers, *self._tasks, *self._feeders) if task is not current
        ]
        for client in list(self._clients):
            client.close()
        for future in self._inboxes.values():
            future.cancel()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def flush(self) -> None:
        """Return once everything published so far has been handled: no subscriber has
        work queued or running, every durable append has committed and been offered."""
        await self._quiesce()

    async def __aenter__(self) -> MemoryBus:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _quiesce(self) -> None:
        """Wait until no subscriber has work and no bus task is running."""
        me = current_worker.get()
        current = asyncio.current_task()
        while True:
            waits: list[asyncio.Future[Any]] = [
                task for task in self._tasks if task is not current and not task.done()
            ]
            for feed in self._feeds.values():
                idle_feed = feed.idle_waiter()
                if idle_feed is not None:
                    waits.append(idle_feed)
            for sub in self.subscriptions:
                # A held subscription (a hot swap in progress) delivers nothing until the
                # swap ends; what it has queued is dropped if the bus stops first.
                if sub is not me and not sub._held:
                    idle = sub.idle_waiter()
                    if idle is not None:
                        waits.append(idle)
            if not waits:
                return
            # asyncio.wait, unlike gather, does not cancel what it waits on if we time out.
            await asyncio.wait(waits)

    # -- clients and subscriptions -------------------------------------------------------

    def client(self, source: str, *, staged: bool = False) -> BusClient:
        """A `orrery.sdk.Bus` view that publishes as ``source`` (``orrery://<node>/<x>``).

        `BusClient.close` releases every subscription and request made through it. A
        ``staged`` client's subscriptions receive nothing until it takes over from a
        held client (`BusClient.take_over`): the new instance in a hot swap.
        """
        if not isinstance(source, str) or not source:
            raise ValueError(f"source must be a non-empty string, got {source!r}")
        client = BusClient(self, source, staged=staged)
        self._clients[client] = None
        return client

    @property
    def clients(self) -> tuple[BusClient, ...]:
        """Clients not yet closed."""
        return tuple(self._clients)

    @property
    def subscriptions(self) -> tuple[MemorySubscription, ...]:
        """Every active subscription, of every client."""
        return tuple(sub for client in self._clients for sub in client.subscriptions)

    def _forget_client(self, client: BusClient) -> None:
        self._clients.pop(client, None)

    def _attach(self, sub: MemorySubscription) -> None:
        if isinstance(sub, DurableSubscription):
            feed = sub._feed
            if isinstance(feed, JournalFeed) and not feed.routed:
                feed.routed = True
                self._routes.add_target(feed.pattern, feed)
            feed.join(sub)
        else:
            self._routes.add(sub)

    def _detach(self, sub: MemorySubscription) -> None:
        if isinstance(sub, DurableSubscription):
            sub._feed.leave(sub)
        else:
            self._routes.remove(sub)

    def _route(self, topic: str) -> tuple[Target, ...]:
        """Targets of ``topic`` (validated). Inbox topics are never cached: each is used once."""
        if topic.startswith(self._inbox_prefix):
            return self._inbox_route
        return self._routes.resolve(topic)

    def _next_seq(self) -> int:
        return self._routes.next_seq()

    def _cache(self) -> dict[str, tuple[Target, ...]]:
        return self._routes.cache

    # -- delivery helpers ----------------------------------------------------------------

    async def _send(self, event: Event, targets: tuple[Target, ...]) -> None:
        """Offer ``event`` to every target, then wait for room where queues were full."""
        waits: list[Waiter] = []
        for target in targets:
            full = target._offer(event)
            if full is not None:
                waits.append(full)
        for sub in waits:
            await sub._put_waiting(event)

    def _open_inbox(self, topic: str | None = None) -> tuple[str, asyncio.Future[Any]]:
        """A fresh reply inbox and its future. ``topic`` is given when no local subscriber
        matched the request (a networked bus then knows "no responders" is final)."""
        inbox = f"{self._inbox_prefix}{next(self._inbox_numbers)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inboxes[inbox] = future
        return inbox, future

    def _close_inbox(self, inbox: str) -> None:
        self._inboxes.pop(inbox, None)

    def _answer(self, replyto: str, value: Any) -> None:
        """Resolve the request waiting on ``replyto``; later or stray replies are ignored."""
        future = self._inboxes.get(replyto)
        if future is not None and not future.done():
            future.set_result(value)

    def _dead_letter(
        self, sub: MemorySubscription, event: Event, error: str, attempts: int
    ) -> None:
        """Republish an event ``sub`` gave up on, on ``orrery.deadletter.<topic>``."""
        if event.type.startswith(DEADLETTER_PREFIX):
            log.error(
                "dead letter %s on %r failed in %s too; dropping it rather than "
                "dead-lettering a dead letter",
                event.id,
                event.type,
                sub.owner,
            )
            return
        topic = DEADLETTER_PREFIX + event.type
        try:
            targets = self._routes.resolve(topic)
        except InvalidTopic as e:
            log.error("cannot dead-letter event %s: %s", event.id, e)
            return
        if not self.accepting or (not targets and self._remote is None):
            return
        now = time.time_ns()
        correlationid, causationid = lineage(event)
        letter = Event(
            id=self._next_id(now),
            type=topic,
            source=self.source,
            time_ns=now,
            subject=event.subject,
            data={
                "event": event.to_dict(),
                "error": error,
                "attempts": attempts,
                "subscriber": sub.owner,
                "pattern": sub.pattern,
            },
            correlationid=correlationid,
            causationid=causationid,
        )
        # A task, so neither the failing worker nor an inline publisher waits on (or,
        # if it subscribes to the dead letters itself, deadlocks on) a full queue.
        self._spawn(self._send_letter(letter, targets), f"orrery.bus dead letter {event.id}")

    async def _send_letter(self, letter: Event, targets: tuple[Target, ...]) -> None:
        await self._send(letter, targets)
        if self._remote is not None:
            waiting = self._remote(letter)  # watchers on other nodes
            if waiting is not None:
                await waiting

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        # A fresh context: the task must not look like the worker that spawned it.
        task = asyncio.get_running_loop().create_task(
            coro, name=name, context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_worker(
        self, coro: Coroutine[Any, Any, None], sub: MemorySubscription
    ) -> asyncio.Task[None]:
        # A fresh context, so whichever publisher happened to create the worker does not
        # leak its context variables into every later delivery.
        task = asyncio.get_running_loop().create_task(
            coro,
            name=f"orrery.bus worker {sub.owner} {sub.pattern}",
            context=contextvars.Context(),
        )
        self._workers.add(task)
        task.add_done_callback(lambda done: self._worker_done(done, sub))
        return task

    def _worker_done(self, task: asyncio.Task[None], sub: MemorySubscription) -> None:
        self._workers.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error("worker of %r crashed", sub, exc_info=exc)
        if sub._task is not task:
            return  # the normal end: unsubscribe already let go of it
        # Cancelled from outside (not by unsubscribe) or crashed while the subscription
        # is live: forget this worker, so the next event starts a fresh one for the queue.
        # (Not restarted here: at event loop shutdown that would leave a pending task.)
        sub._task = None
        sub._working = False

    def __repr__(self) -> str:
        return (
            f"<MemoryBus node={self.node_id!r} {self._state} "
            f"targets={len(self._routes)} clients={len(self._clients)}>"
        )
