"""The memory bus's registry of durable subscriptions (see `JournalFeed`)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from ._durable import DurableFeed
from ._journal_feed import BUS_NAMESPACE, JournalFeed
from ._routes import RouteTable
from .errors import DurableNotSupported, InvalidDurable

if TYPE_CHECKING:
    from orrery.kernel.storage import Storage

__all__ = ["DurableRegistry"]

log = logging.getLogger("orrery.bus")

# Durable names end up in journal stream names and JetStream consumer names.
_DURABLE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")


class DurableRegistry:
    """Durable feeds by name, and the tasks that feed them (a `MemoryBus` base class)."""

    storage: Storage | None
    queue_size: int
    _feeds: dict[str, DurableFeed]
    _feeders: set[asyncio.Task[None]]
    _routes: RouteTable

    @property
    def state(self) -> str:  # pragma: no cover - provided by MemoryBus
        raise NotImplementedError

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def _durable_feed(self, name: str, pattern: str) -> DurableFeed:
        """The feed of durable ``name`` (made on first use); checks name and pattern."""
        if not isinstance(name, str) or not _DURABLE_NAME.fullmatch(name):
            raise InvalidDurable(
                name, pattern, "use 1-128 letters, digits, '_', '-' or '.', e.g. 'billing'"
            )
        feed = self._feeds.get(name)
        if feed is None:
            feed = self._feeds[name] = self._new_feed(name, pattern)
        elif feed.pattern != pattern:
            raise InvalidDurable(
                name,
                pattern,
                f"it is already subscribed on {feed.pattern!r}; a durable name keeps one "
                f"pattern (pick another name for another pattern)",
            )
        return feed

    def _new_feed(self, name: str, pattern: str) -> DurableFeed:
        if self.storage is None:
            raise DurableNotSupported(name, pattern)
        return JournalFeed(
            self,
            name,
            pattern,
            self.storage.journal(BUS_NAMESPACE),
            self.storage.store(BUS_NAMESPACE),
            self._routes.next_seq(),
        )

    def _release_feed(self, feed: DurableFeed) -> None:
        """Drop a feed whose last member left (unless one joined again meanwhile)."""
        if feed.members or self.state == "stopped":
            return
        if self._feeds.get(feed.name) is feed:
            del self._feeds[feed.name]
        if isinstance(feed, JournalFeed):
            feed.routed = False
            self._routes.remove_target(feed.pattern, feed)
        self._spawn(feed.close(), f"orrery.bus close durable {feed.name}")

    @property
    def durables(self) -> dict[str, dict[str, Any]]:
        """Durable subscriptions in use: name -> position, in-flight count, members."""
        return {name: feed.stats() for name, feed in self._feeds.items()}

    def _start_feeder(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        # Feeders run until their feed closes; stop() cancels them instead of waiting.
        task = asyncio.get_running_loop().create_task(
            coro, name=f"orrery.bus {name}", context=contextvars.Context()
        )
        self._feeders.add(task)
        task.add_done_callback(self._feeder_done)
        return task

    def _feeder_done(self, task: asyncio.Task[None]) -> None:
        self._feeders.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("durable feeder %s crashed", task.get_name(), exc_info=task.exception())

    async def _close_feeds(self) -> None:
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for feed in feeds:
            if isinstance(feed, JournalFeed):
                feed.routed = False
                self._routes.remove_target(feed.pattern, feed)
            await feed.close()
