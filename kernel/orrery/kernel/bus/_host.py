"""What a subscription needs from its bus, and from the durable feed it belongs to."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from orrery.sdk import Event

if TYPE_CHECKING:
    from ._subscription import MemorySubscription

__all__ = ["DurableLink", "SubscriptionHost"]


class SubscriptionHost(Protocol):
    """What a subscription needs from its bus: settings, tasks, replies, failures."""

    queue_size: int
    max_attempts: int
    retry_backoff: float
    handler_timeout: float | None

    def start_worker(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run a subscription's worker in a task the bus owns (and cancels on stop)."""
        ...

    def answer(self, replyto: str, value: Any) -> None:
        """A handler returned ``value`` for a request whose reply goes to ``replyto``."""

    def handle_failure(
        self, sub: MemorySubscription, event: Event, exc: BaseException, attempts: int
    ) -> bool:
        """Attempt ``attempts`` of ``sub`` on ``event`` raised ``exc``; True when that was
        the last one (the event has then been dead-lettered)."""
        ...


class DurableLink(Protocol):
    """The durable feed a member subscription acknowledges to."""

    @property
    def name(self) -> str: ...

    def join(self, member: MemorySubscription) -> None: ...

    def leave(self, member: MemorySubscription) -> None: ...

    def acknowledge(self, event: Event) -> None: ...

    def requeue(self, events: Sequence[Event]) -> None: ...
