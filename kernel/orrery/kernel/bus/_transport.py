"""How the local bus reaches other nodes: the `Transport` protocol (NATS implements it).

The local bus keeps every delivery semantic for its own subscribers (ordered bounded
inboxes, inline sync delivery, retries, dead letters, hot swap); a transport carries
events between nodes. The bus calls it at these points and nowhere else:

- `start` / `opened` / `stop`: connect, register what was attached, disconnect;
- `flush`: wait until what was sent reached the server and what arrived was handled;
- `send`: every published event (a plain call; an awaitable only when the publisher
  must wait);
- `attach` / `detach`: a local subscription appears or goes (the transport subscribes
  its pattern on the server; a queue group is served by the transport alone);
- `reply`: a handler answered a request that came from another node;
- `expect_reply` / `forget_reply`: a request is waiting on an inbox (to report "no
  responders" when no node has one);
- `feed_factory`: durable subscriptions (JetStream instead of the journal).

The transport calls back through `BusPort`: the bus's public methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, Protocol

from orrery.sdk import Event

from ._durable import FeedFactory, FeedTasks
from ._subscription import MemorySubscription
from ._traffic import TrafficBook

__all__ = ["BusPort", "Transport"]


class BusPort(FeedTasks, Protocol):
    """What a transport may use of the bus it serves."""

    node_id: str
    source: str
    inbox_prefix: str

    @property
    def state(self) -> str: ...

    @property
    def accepting(self) -> bool: ...

    @property
    def traffic_book(self) -> TrafficBook: ...

    def next_id(self, now_ns: int) -> str: ...

    def inbox_future(self, inbox: str) -> asyncio.Future[Any] | None: ...

    def answer(self, replyto: str, value: Any) -> None: ...

    async def quiesce(self) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None: ...


class Transport(Protocol):
    """Carries events between this bus and other nodes."""

    async def start(self, bus: BusPort) -> None:
        """Connect (raising `BusUnavailable` if it cannot); called once, before the bus
        accepts publishes."""

    async def opened(self) -> None:
        """The bus accepts publishes: register what was attached before, wait for it."""

    async def stop(self, timeout: float) -> None:
        """After the local bus stopped: unsubscribe, flush and disconnect."""

    async def flush(self) -> None:
        """Return once what was sent reached the server and everything that arrived
        meanwhile was handled (`BusPort.quiesce`), repeated while handlers publish more."""

    def send(self, event: Event) -> Awaitable[None] | None:
        """Send a locally published ``event`` to other nodes."""
        ...

    def attach(self, sub: MemorySubscription) -> bool:
        """``sub`` appeared; True when the transport alone routes it (queue groups)."""
        ...

    def detach(self, sub: MemorySubscription) -> bool:
        """``sub`` went; True when the transport alone routed it."""
        ...

    def reply(self, replyto: str, value: Any) -> None:
        """Answer a request from another node."""

    def expect_reply(self, inbox: str, topic: str | None) -> None:
        """A request waits on ``inbox``; ``topic`` when no local subscriber matched."""

    def forget_reply(self, inbox: str) -> None:
        """The request on ``inbox`` is over."""

    def feed_factory(self) -> FeedFactory:
        """What makes this transport's durable feeds."""
        ...
