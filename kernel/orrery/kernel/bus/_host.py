"""What a subscription needs from its bus and from the durable feed it belongs to, and
what a client needs from its bus (the protocols `MemoryBus` implements)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from orrery.sdk import Event

from ._target import Target
from ._traffic import Route

if TYPE_CHECKING:
    from ._subscription import MemorySubscription

__all__ = ["ClientHost", "DurableLink", "SubscriptionHost"]


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


class ClientHost(SubscriptionHost, Protocol):
    """What a `BusClient` uses of its bus."""

    #: Topic -> `Route`, read by the publish hot path without a call.
    route_cache: dict[str, Route]
    #: How each event leaves the process (None: it does not).
    remote: Callable[[Event], Awaitable[None] | None] | None

    @property
    def state(self) -> str: ...

    @property
    def accepting(self) -> bool: ...

    def next_id(self, now_ns: int) -> str: ...

    def next_seq(self) -> int: ...

    def route(self, topic: str) -> Route: ...

    def attach(self, sub: MemorySubscription) -> None: ...

    def detach(self, sub: MemorySubscription) -> None: ...

    def durable_feed(self, name: str, pattern: str) -> DurableLink: ...

    def open_inbox(self, topic: str | None = None) -> tuple[str, asyncio.Future[Any]]: ...

    def close_inbox(self, inbox: str) -> None: ...

    async def send(self, event: Event, targets: tuple[Target, ...]) -> None: ...

    def forget_client(self, client: Any) -> None: ...
