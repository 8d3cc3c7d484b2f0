"""Durable subscriptions: the feeds behind them, and the registry of feeds by name.

A durable feed (a journal consumer on the memory bus, a JetStream consumer on nats)
keeps every matching event until it is acknowledged and offers it to one of its member
subscriptions. A member is a `MemorySubscription` made with ``feed=``: an ordered
bounded queue, retries, dead letters, hold and take-over for a hot swap like any other,
which acknowledges an event to its feed once done with it (handled without raising, or
given up on and dead-lettered: the dead letter then carries it).

`DurableFeeds` is the one registry of feeds by durable name; a `FeedFactory` (journal
or JetStream) makes each feed. A feed that takes publishes itself (the journal feed)
exposes a route ``target``, which the registry asks the bus to route while the feed
lives.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from orrery.sdk import Event

from ._subscription import MemorySubscription
from ._target import Target
from .errors import DurableNotSupported, InvalidDurable

__all__ = ["DurableFeed", "DurableFeeds", "FeedFactory", "FeedTasks"]

log = logging.getLogger("orrery.bus")

# Durable names end up in journal stream names and JetStream consumer names; a plugin's
# names are "<plugin>/<name>" (see BusClient).
_DURABLE_NAME = re.compile(
    r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127})?"
)


class FeedTasks(Protocol):
    """How a feed runs its background work in tasks the bus owns."""

    queue_size: int

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """A short task (an append, a save); `MemoryBus.flush` waits for these."""

    def start_feeder(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task that runs until its feed closes; `MemoryBus.stop` cancels these."""
        ...


class DurableFeed(Protocol):
    """Where a durable subscription's events come from, and where acks go."""

    @property
    def name(self) -> str:
        """The durable name."""
        ...

    @property
    def pattern(self) -> str:
        """The pattern every member of the feed subscribes to."""
        ...

    @property
    def target(self) -> Target | None:
        """What publishes on the pattern are routed to (None: they are not)."""
        ...

    def join(self, member: MemorySubscription) -> None:
        """Start offering events to ``member``."""

    def leave(self, member: MemorySubscription) -> None:
        """Stop offering events to ``member``."""

    @property
    def members(self) -> Sequence[MemorySubscription]:
        """The subscriptions currently sharing the feed."""
        ...

    def acknowledge(self, event: Event) -> None:
        """``event`` was handled (or dead-lettered): do not deliver it again."""

    def requeue(self, events: Sequence[Event]) -> None:
        """``events`` were offered to a member that left before finishing them."""

    def idle_waiter(self) -> asyncio.Future[None] | None:
        """A future resolved once the feed has offered everything it has (None: now)."""

    async def close(self) -> None:
        """Stop feeding; what is not acknowledged is delivered again later."""

    def stats(self) -> dict[str, Any]:
        """Name, pattern, position or backlog, members: for status pages and tests."""


#: ``factory(name, pattern, on_empty)``: a new feed; it calls ``on_empty(feed)`` (soon,
#: not at once) when its last member left.
FeedFactory = Callable[[str, str, Callable[[DurableFeed], None]], DurableFeed]


class DurableFeeds:
    """The feeds of one bus by durable name, made by ``factory`` on first use."""

    __slots__ = ("_factory", "_feeds", "_route", "_spawn", "_unroute", "closed")

    def __init__(
        self,
        factory: FeedFactory | None,
        *,
        route: Callable[[str, Target], None],
        unroute: Callable[[str, Target], object],
        spawn: Callable[[Coroutine[Any, Any, None], str], None],
    ) -> None:
        self._factory = factory
        self._feeds: dict[str, DurableFeed] = {}
        self._route = route
        self._unroute = unroute
        self._spawn = spawn
        self.closed = False

    def __iter__(self) -> Any:
        return iter(list(self._feeds.values()))

    def feed(self, name: str, pattern: str) -> DurableFeed:
        """The feed of durable ``name`` (made on first use); checks name and pattern."""
        if not isinstance(name, str) or not _DURABLE_NAME.fullmatch(name):
            raise InvalidDurable(
                name, pattern, "use 1-128 letters, digits, '_', '-' or '.', e.g. 'billing'"
            )
        feed = self._feeds.get(name)
        if feed is None:
            if self._factory is None:
                raise DurableNotSupported(name, pattern)
            feed = self._feeds[name] = self._factory(name, pattern, self._release)
            target = feed.target
            if target is not None:
                self._route(pattern, target)
        elif feed.pattern != pattern:
            raise InvalidDurable(
                name,
                pattern,
                f"it is already subscribed on {feed.pattern!r}; a durable name keeps one "
                f"pattern (pick another name for another pattern)",
            )
        return feed

    def _release(self, feed: DurableFeed) -> None:
        """Drop a feed whose last member left (unless one joined again meanwhile)."""
        if feed.members or self.closed or self._feeds.get(feed.name) is not feed:
            return
        del self._feeds[feed.name]
        target = feed.target
        if target is not None:
            self._unroute(feed.pattern, target)
        self._spawn(feed.close(), f"orrery.bus close durable {feed.name}")

    def stats(self) -> dict[str, dict[str, Any]]:
        """Durable subscriptions in use: name -> position, in-flight count, members."""
        return {name: feed.stats() for name, feed in self._feeds.items()}

    def idle_waiters(self) -> list[asyncio.Future[None]]:
        """Futures of feeds that still have something to offer."""
        waits = []
        for feed in self._feeds.values():
            waiter = feed.idle_waiter()
            if waiter is not None:
                waits.append(waiter)
        return waits

    async def close(self) -> None:
        """Close every feed (positions saved; the unacknowledged come back later)."""
        self.closed = True
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for feed in feeds:
            target = feed.target
            if target is not None:
                self._unroute(feed.pattern, target)
            await feed.close()
