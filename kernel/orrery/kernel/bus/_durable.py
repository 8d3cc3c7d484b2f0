"""Durable subscriptions: a subscriber whose events come from a durable feed, not the
publisher, and are acknowledged back to that feed once handled.

The feed (a journal consumer on the memory bus, a JetStream consumer on nats) keeps
every matching event until it is acknowledged and offers it to one of its member
subscriptions. A member is a `MemorySubscription` in every other respect (ordered
bounded queue, retries, dead letters, hold and take-over for a hot swap); it only adds
the acknowledgement once an event is done with: handled without raising, or given up on
and dead-lettered (the dead letter then carries it, so it is not redelivered forever).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from orrery.sdk import Event, Handler

from ._subscription import MemorySubscription
from ._target import Waiter

if TYPE_CHECKING:
    from ._client import BusClient
    from ._memory import MemoryBus

__all__ = ["DurableFeed", "DurableSubscription"]


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

    def join(self, member: DurableSubscription) -> None:
        """Start offering events to ``member``."""

    def leave(self, member: DurableSubscription) -> None:
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


class DurableSubscription(MemorySubscription):
    """A member of a durable subscription (implements `orrery.sdk.Subscription`)."""

    __slots__ = ("_current", "_feed")

    def __init__(
        self,
        bus: MemoryBus,
        client: BusClient,
        pattern: str,
        handler: Handler,
        group: str | None,
        seq: int,
        feed: DurableFeed,
    ) -> None:
        super().__init__(bus, client, pattern, handler, group, seq)
        self._feed = feed
        self._current: Event | None = None  # being handled by the worker

    @property
    def durable(self) -> str | None:
        """The durable name: the position and backlog this subscription shares."""
        return self._feed.name

    def _offer(self, event: Event) -> Waiter | None:
        # Never inline: the acknowledgement is given by the worker once the handler has
        # returned, which the publisher's inline path has no hook for.
        self._direct = False
        return super()._offer(event)

    async def _deliver(self, event: Event, attempts: int, pending: Any) -> None:
        self._current = event
        try:
            await super()._deliver(event, attempts, pending)
        finally:
            self._current = None
        # Returning while still active means handled or dead-lettered; after an
        # unsubscribe the event was handed back to the feed (see `unsubscribe`).
        if self._active:
            self._feed.acknowledge(event)

    def unsubscribe(self) -> None:
        """Stop delivery now; what this member was given and did not finish goes back to
        the feed, for the other members (or for after a restart)."""
        if not self._active:
            return
        unfinished: list[Event] = []
        if self._current is not None:
            unfinished.append(self._current)
        if self._resume is not None:
            unfinished.append(self._resume[0])
        unfinished.extend(self._queue)
        super().unsubscribe()
        if unfinished:
            self._feed.requeue(unfinished)

    def __repr__(self) -> str:
        return super().__repr__().replace("<MemorySubscription", "<DurableSubscription", 1)
