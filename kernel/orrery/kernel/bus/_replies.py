"""The reply inboxes of requests waiting on one bus."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from typing import Any

from orrery.sdk import Event

from ._target import Target, Waiter
from ._traffic import Route, Traffic

__all__ = ["ReplyInboxes"]


class _ReplyTarget(Target):
    """Routes an explicit publish on a request's ``replyto`` topic to the waiting request."""

    __slots__ = ("_inboxes",)

    def __init__(self, inboxes: ReplyInboxes) -> None:
        super().__init__()
        self._inboxes = inboxes

    def offer(self, event: Event) -> Waiter | None:
        self._inboxes.resolve(event.type, event.data)
        return None


class ReplyInboxes:
    """One future per waiting request, by inbox topic (``<prefix><n>``)."""

    __slots__ = ("_futures", "_numbers", "prefix", "route")

    def __init__(self, traffic: Traffic) -> None:
        # Random per bus, so inboxes of two buses bridged later never collide.
        self.prefix = f"_INBOX.{secrets.token_hex(8)}."
        self._numbers = itertools.count(1)
        self._futures: dict[str, asyncio.Future[Any]] = {}
        #: Where a publish on an inbox topic goes (never cached: each is used once).
        self.route = Route((_ReplyTarget(self),), traffic)

    def __len__(self) -> int:
        return len(self._futures)

    def open(self) -> tuple[str, asyncio.Future[Any]]:
        inbox = f"{self.prefix}{next(self._numbers)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures[inbox] = future
        return inbox, future

    def close(self, inbox: str) -> None:
        self._futures.pop(inbox, None)

    def future(self, inbox: str) -> asyncio.Future[Any] | None:
        """The future of the request still waiting on ``inbox``, if one is."""
        future = self._futures.get(inbox)
        return None if future is None or future.done() else future

    def resolve(self, inbox: str, value: Any) -> None:
        """Answer the request on ``inbox``; later or stray replies are ignored."""
        future = self.future(inbox)
        if future is not None:
            future.set_result(value)

    def cancel_all(self) -> None:
        for future in self._futures.values():
            future.cancel()
