"""The embedded, in-process event bus: lifecycle, request inboxes, dead letters, tasks.

Its public methods below "for clients, subscriptions and feeds" are what `BusClient`,
`MemorySubscription` and the durable feeds call; nothing outside reads its fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from orrery.sdk import Event
from orrery.sdk.errors import InvalidTopic
from orrery.sdk.wire import EventIdGenerator

from ._causation import current_worker
from ._client import BusClient
from ._durable import DurableFeed, DurableFeeds, FeedFactory
from ._failures import dead_letter, log_failure
from ._journal_feed import journal_feeds
from ._replies import ReplyInboxes
from ._routes import RouteTable
from ._subscription import MemorySubscription
from ._target import Target, Waiter
from ._tasks import BusTasks
from ._traffic import Route, TrafficBook
from ._transport import Transport
from .errors import BusClosed

if TYPE_CHECKING:
    from orrery.kernel.storage import Storage

__all__ = ["DEADLETTER_PREFIX", "MemoryBus"]

log = logging.getLogger("orrery.bus")

#: Events a subscriber gave up on are republished on ``DEADLETTER_PREFIX + topic``.
DEADLETTER_PREFIX = "orrery.deadletter."

_NEW, _RUNNING, _STOPPING, _STOPPED = "new", "running", "stopping", "stopped"


class MemoryBus:
    """Publish/subscribe and request/reply inside one process (DESIGN §4).

    Plugins and the kernel talk to it through `client` views, one per source. Delivery
    per subscriber is in publish order through a queue of at most ``queue_size`` events
    (a publisher waits when it is full); a failing handler is retried ``max_attempts``
    times with exponential backoff starting at ``retry_backoff`` seconds, then the event
    is dead-lettered on ``orrery.deadletter.<topic>``.

    ``route_cache_size`` bounds the number of topics whose resolved targets are cached.
    With ``storage``, ``subscribe(..., durable="name")`` keeps matching events in the
    journal until acknowledged (see `JournalFeed`); without it, durable raises
    `DurableNotSupported`. ``handler_timeout`` (seconds, None for none) cancels an
    awaited handler attempt that takes longer; it then counts as failed.
    ``max_subscriptions`` bounds the live subscriptions of each plugin's client.
    """

    def __init__(
        self,
        node_id: str,
        *,
        queue_size: int = 1024,
        max_attempts: int = 3,
        retry_backoff: float = 0.01,
        route_cache_size: int = 4096,
        storage: Storage | None = None,
        handler_timeout: float | None = 60.0,
        max_subscriptions: int = 10_000,
        transport: Transport | None = None,
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
        if handler_timeout is not None and not handler_timeout > 0:
            raise ValueError(f"handler_timeout must be positive or None, got {handler_timeout!r}")
        if max_subscriptions < 1:
            raise ValueError(f"max_subscriptions must be at least 1, got {max_subscriptions!r}")
        self.node_id = node_id
        self.queue_size = queue_size
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.handler_timeout = handler_timeout
        self.max_subscriptions = max_subscriptions
        #: Source of the events the bus publishes itself (dead letters).
        self.source = f"orrery://{node_id}/bus"
        self._state = _NEW
        self._routes = RouteTable(route_cache_size)
        #: Topic -> `Route`; the dict is never rebound, so clients keep its ``get``.
        self.route_cache = self._routes.cache
        self._ids = EventIdGenerator()
        #: ``next_id(now_ns)``, bound once so the publish path makes a single call.
        self.next_id = self._ids.next_id
        self._clients: dict[BusClient, None] = {}
        self._inboxes = ReplyInboxes(self._routes.traffic.of("_INBOX"))
        self.inbox_prefix = self._inboxes.prefix
        self._tasks = BusTasks()
        self.storage = storage
        self._transport = transport
        #: How each published event leaves the process (None: it does not): a plain call
        #: returning what to await, if anything, before the publish is done.
        self.remote: Callable[[Event], Awaitable[None] | None] | None = (
            None if transport is None else transport.send
        )
        self._feeds = DurableFeeds(
            self._feed_factory(),
            route=self._routes.add_target,
            unroute=self._routes.remove_target,
            spawn=self.spawn,
        )

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
            raise BusClosed(self, "start", f"it was stopped; create a new {type(self).__name__}")
        if self._transport is not None:
            await self._transport.start(self)
        self._state = _RUNNING
        for client in self._clients:
            client.refresh()
        if self._transport is not None:
            await self._transport.opened()

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
                await self.quiesce()
        except TimeoutError:
            left = sum(sub.pending for sub in self.subscriptions)
            log.warning(
                "bus %s: stop() gave up draining after %gs; dropping %d queued event(s)",
                self.node_id,
                timeout,
                left,
            )
        self._state = _STOPPED
        await self._feeds.close()
        for client in list(self._clients):
            client.close()
        self._inboxes.cancel_all()
        await self._tasks.cancel_all()
        if self._transport is not None:
            await self._transport.stop(timeout)

    async def flush(self) -> None:
        """Return once everything published so far has been handled: no subscriber has
        work queued or running, every durable append has committed and been offered
        (with a transport: and what was sent reached the server, and what arrived
        meanwhile was handled)."""
        if self._transport is not None:
            await self._transport.flush()
        else:
            await self.quiesce()

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

    async def quiesce(self) -> None:
        """Wait until no local subscriber has work and no bus task is running."""
        me = current_worker.get()
        while True:
            waits: list[asyncio.Future[Any]] = [*self._tasks.running()]
            waits.extend(self._feeds.idle_waiters())
            for sub in self.subscriptions:
                # A held subscription (a hot swap in progress) delivers nothing until the
                # swap ends; what it has queued is dropped if the bus stops first.
                if sub is not me and not sub.held:
                    idle = sub.idle_waiter()
                    if idle is not None:
                        waits.append(idle)
            if not waits:
                return
            # asyncio.wait, unlike gather, does not cancel what it waits on if we time out.
            await asyncio.wait(waits)

    # -- clients and subscriptions -------------------------------------------------------

    def client(
        self,
        source: str,
        *,
        staged: bool = False,
        namespace: str | None = None,
        permissions: Iterable[str] = (),
    ) -> BusClient:
        """A `orrery.sdk.Bus` view that publishes as ``source`` (``orrery://<node>/<x>``).

        `BusClient.close` releases every subscription and request made through it. A
        ``staged`` client's subscriptions receive nothing until it takes over from a
        held client (`BusClient.take_over`): the new instance in a hot swap. A plugin's
        client has its name as ``namespace`` (its group and durable names are its own,
        and it holds at most ``max_subscriptions``) and its declared ``permissions``
        (``bus.group:<plugin>/<name>`` lets it join another plugin's group).
        """
        if not isinstance(source, str) or not source:
            raise ValueError(f"source must be a non-empty string, got {source!r}")
        client = BusClient(
            self,
            source,
            staged=staged,
            namespace=namespace,
            permissions=permissions,
            max_subscriptions=None if namespace is None else self.max_subscriptions,
        )
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

    @property
    def open_requests(self) -> int:
        """Requests waiting for a reply."""
        return len(self._inboxes)

    @property
    def target_count(self) -> int:
        """Routed targets: fan-out subscriptions, queue groups, journal feeds."""
        return len(self._routes)

    @property
    def durables(self) -> dict[str, dict[str, Any]]:
        """Durable subscriptions in use: name -> position, in-flight count, members."""
        return self._feeds.stats()

    @property
    def transport(self) -> Transport | None:
        """What carries events to other nodes (None: this process only)."""
        return self._transport

    @property
    def traffic_book(self) -> TrafficBook:
        """The traffic counters by topic prefix (for a transport counting arrivals)."""
        return self._routes.traffic

    def traffic(self) -> dict[str, dict[str, int]]:
        """Events by topic prefix (the first token): ``published`` on this node,
        ``delivered`` to a subscriber here (each subscriber counts), ``failed`` handler
        attempts and ``deadlettered`` events. Computed now; publishing only counts."""
        return self._routes.traffic_snapshot([self._inboxes.route])

    # -- for clients, subscriptions and feeds --------------------------------------------

    def forget_client(self, client: BusClient) -> None:
        """``client`` closed."""
        self._clients.pop(client, None)

    def attach(self, sub: MemorySubscription) -> None:
        """Start routing events to ``sub``."""
        feed = sub.feed
        if feed is not None:
            feed.join(sub)
        elif self._transport is None or not self._transport.attach(sub):
            self._routes.add(sub)

    def detach(self, sub: MemorySubscription) -> None:
        """Stop routing events to ``sub``."""
        feed = sub.feed
        if feed is not None:
            feed.leave(sub)
        elif self._transport is None or not self._transport.detach(sub):
            self._routes.remove(sub)

    def durable_feed(self, name: str, pattern: str) -> DurableFeed:
        """The feed of durable ``name`` (checks the name; made on first use)."""
        return self._feeds.feed(name, pattern)

    def _feed_factory(self) -> FeedFactory | None:
        if self._transport is not None:
            return self._transport.feed_factory()
        storage = self.storage
        if storage is None:
            return None
        return journal_feeds(storage, self, self._routes.next_seq)

    def route(self, topic: str) -> Route:
        """The route of ``topic`` (validated). Inbox topics are never cached: each is
        used once."""
        if topic.startswith(self.inbox_prefix):
            return self._inboxes.route
        return self._routes.resolve(topic)

    def next_seq(self) -> int:
        """A number ordering targets by creation."""
        return self._routes.next_seq()

    async def send(self, event: Event, targets: tuple[Target, ...]) -> None:
        """Offer ``event`` to every target, then wait for room where queues were full."""
        waits: list[Waiter] = []
        for target in targets:
            full = target.offer(event)
            if full is not None:
                waits.append(full)
        for sub in waits:
            await sub.put_waiting(event)

    def open_inbox(self, topic: str | None = None) -> tuple[str, asyncio.Future[Any]]:
        """A fresh reply inbox and its future. ``topic`` is given when no local subscriber
        matched the request (a networked bus then knows "no responders" is final)."""
        inbox, future = self._inboxes.open()
        if self._transport is not None:
            self._transport.expect_reply(inbox, topic)
        return inbox, future

    def close_inbox(self, inbox: str) -> None:
        """The request waiting on ``inbox`` is over."""
        self._inboxes.close(inbox)
        if self._transport is not None:
            self._transport.forget_reply(inbox)

    def inbox_future(self, inbox: str) -> asyncio.Future[Any] | None:
        """The future of the request waiting on ``inbox``, if one still is."""
        return self._inboxes.future(inbox)

    def answer(self, replyto: str, value: Any) -> None:
        """Resolve the request waiting on ``replyto`` (through the transport when it came
        from another node); later or stray replies are ignored."""
        if self._transport is not None and not replyto.startswith(self.inbox_prefix):
            if self.accepting:
                self._transport.reply(replyto, value)
            return
        self._inboxes.resolve(replyto, value)

    def handle_failure(
        self, sub: MemorySubscription, event: Event, exc: BaseException, attempts: int
    ) -> bool:
        """A handler attempt failed: log it, count it, dead-letter after the last one."""
        traffic = self._routes.traffic.of(event.type)
        traffic.failed += 1
        if not log_failure(sub, event, exc, attempts, self.max_attempts):
            return False
        traffic.deadlettered += 1
        self._dead_letter(sub, event, f"{type(exc).__name__}: {exc}", attempts)
        return True

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
            route = self._routes.resolve(topic)
        except InvalidTopic as e:
            log.error("cannot dead-letter event %s: %s", event.id, e)
            return
        if not self.accepting or (not route.targets and self.remote is None):
            return
        letter = dead_letter(event, sub, error, attempts, topic, self.next_id, self.source)
        route.count += 1
        # A task, so neither the failing worker nor an inline publisher waits on (or,
        # if it subscribes to the dead letters itself, deadlocks on) a full queue.
        self.spawn(self._send_letter(letter, route.targets), f"orrery.bus dead letter {event.id}")

    async def _send_letter(self, letter: Event, targets: tuple[Target, ...]) -> None:
        await self.send(letter, targets)
        if self.remote is not None:
            waiting = self.remote(letter)  # watchers on other nodes
            if waiting is not None:
                await waiting

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` in a bus task (`flush` waits for it, `stop` cancels it)."""
        self._tasks.spawn(coro, name)

    def start_worker(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run a subscription's worker (cancelled by `stop`)."""
        return self._tasks.start_worker(coro, name)

    def start_feeder(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run a feed's task until its feed closes; `stop` cancels it instead of waiting."""
        return self._tasks.start_feeder(coro, name)

    @property
    def idle(self) -> bool:
        """No worker or bus task left (after `stop`)."""
        return self._tasks.idle

    def __repr__(self) -> str:
        return (
            f"<MemoryBus node={self.node_id!r} {self._state} "
            f"targets={len(self._routes)} clients={len(self._clients)}>"
        )
