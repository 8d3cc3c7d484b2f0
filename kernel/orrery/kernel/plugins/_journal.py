"""``ctx.journal``: the plugin's journal, whose subscriptions end when the plugin stops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from orrery.sdk import Journal, JournalEvent, Subscription

__all__ = ["PluginJournal"]


class PluginJournal:
    """Forwards to the storage's journal and remembers the subscriptions made through it."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._subscriptions: list[Subscription] = []

    async def append(
        self, stream: str, events: Sequence[Any], expected_version: int | None = None
    ) -> int:
        return await self._journal.append(stream, events, expected_version)

    async def version(self, stream: str) -> int:
        return await self._journal.version(stream)

    def read(self, stream: str, from_version: int = 0) -> AsyncIterator[JournalEvent]:
        return self._journal.read(stream, from_version)

    def read_all(
        self, from_position: int = 0, until_time_ns: int | None = None
    ) -> AsyncIterator[JournalEvent]:
        return self._journal.read_all(from_position, until_time_ns)

    def subscribe(
        self, stream: str, handler: Callable[[JournalEvent], Any], *, from_version: int = 0
    ) -> Subscription:
        subscription = self._journal.subscribe(stream, handler, from_version=from_version)
        self._subscriptions.append(subscription)
        return subscription

    async def save_snapshot(self, stream: str, version: int, state: Any) -> None:
        await self._journal.save_snapshot(stream, version, state)

    async def load_snapshot(
        self, stream: str, max_version: int | None = None
    ) -> tuple[int, Any] | None:
        return await self._journal.load_snapshot(stream, max_version)

    async def truncate(self, stream: str, before_version: int) -> int:
        return await self._journal.truncate(stream, before_version)

    def release(self) -> None:
        for subscription in self._subscriptions:
            subscription.unsubscribe()
        self._subscriptions.clear()
