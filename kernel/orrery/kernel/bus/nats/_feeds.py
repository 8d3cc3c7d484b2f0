"""Core NATS subscriptions feeding local subscribers: one per fan-out pattern, one per
(pattern, queue group).

A node subscribes to NATS once per distinct pattern its plugins use, whatever the number
of local subscribers; a message is decoded once and offered to each of them through the
memory bus's machinery (ordered bounded queues, inline sync delivery, retries). A queue
group is one NATS queue subscription per node, so the server picks the node and the
node's `Group` picks the local member.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from orrery.kernel.bus import Group, MemorySubscription, Waiter
from orrery.sdk import Event
from orrery.sdk.errors import InvalidEvent

from ._fastpath import DirectClient, DirectRoute, pump, round_trip
from ._wire import decode_event

if TYPE_CHECKING:
    from ._transport import NatsTransport

__all__ = ["NatsFeed", "PatternFeed", "QueueFeed"]

log = logging.getLogger("orrery.bus.nats")


class NatsFeed:
    """A NATS subscription and the local members it feeds."""

    __slots__ = (
        "_direct",
        "_direct_conn",
        "_nsub",
        "_pump",
        "_transport",
        "members",
        "opening",
        "queue",
        "subject",
    )

    #: Whether messages may skip nats-py's Msg and queue (they need no reply subject).
    DIRECT = True

    def __init__(self, transport: NatsTransport, subject: str, queue: str = "") -> None:
        self._transport = transport
        self.subject = subject
        self.queue = queue
        self._nsub: NatsSubscription | None = None
        self._pump: asyncio.Task[None] | None = None
        self._direct: DirectRoute | None = None
        self._direct_conn: DirectClient | None = None
        #: Whether a registration with the server is under way (see NatsTransport.open_feed).
        self.opening = False
        self.members: list[MemorySubscription] = []

    @property
    def open(self) -> bool:
        """Whether the NATS subscription is in place."""
        return self._nsub is not None

    async def subscribe(self, conn: Client) -> None:
        """Subscribe on ``conn`` and wait until the server has registered it."""
        if self._nsub is not None:
            return
        # No callback: the reader hands payloads straight to `_take` (DirectClient), or
        # else `pump` drains the subscription's queue in batches.
        # nats-py's default limits apply to what waits for dispatch: past them, messages
        # are dropped as for any slow NATS consumer (core NATS has no backpressure).
        nsub = self._nsub = await conn.subscribe(self.subject, queue=self.queue)
        if self.DIRECT and isinstance(conn, DirectClient):
            self._direct = conn.direct(nsub, self._take)
            self._direct_conn = conn
        if self._direct is None:
            self._pump = self._transport.start_feeder(
                pump(nsub, self._handle), f"pump {self.subject}"
            )
        await round_trip(conn)

    async def unsubscribe(self) -> None:
        """Drop the NATS subscription and stop dispatching."""
        nsub, self._nsub = self._nsub, None
        task, self._pump = self._pump, None
        if task is not None:
            task.cancel()
        if self._direct_conn is not None and nsub is not None:
            self._direct_conn.undirect(nsub)
        self._direct = self._direct_conn = None
        if nsub is not None:
            try:
                await nsub.unsubscribe()
            except Exception as e:  # a closed connection has nothing left to unsubscribe
                log.debug("unsubscribe %s: %s", self.subject, e)

    async def settle(self) -> None:
        """Wait until every message received so far has been handed to a member."""
        if self._direct is not None:
            await self._direct.settle()
            return
        nsub = self._nsub
        if nsub is not None:
            await nsub._pending_queue.join()

    def _handle(self, msg: Msg) -> Awaitable[None] | None:
        """Dispatch one message; returns what to await when a local queue is full."""
        return self._take(msg.data)

    def _take(self, data: bytes) -> Awaitable[None] | None:
        """Dispatch one payload; returns what to await when a local queue is full."""
        try:
            event = decode_event(data)
        except InvalidEvent as e:
            log.warning("dropping a message on %s that is not a CloudEvent: %s", self.subject, e)
            return None
        return self._dispatch(event)

    def _dispatch(self, event: Event) -> Awaitable[None] | None:  # pragma: no cover
        raise NotImplementedError


class PatternFeed(NatsFeed):
    """Fan-out: every local subscriber of the pattern gets each remote event."""

    __slots__ = ("_targets", "pattern")

    def __init__(self, transport: NatsTransport, subject: str) -> None:
        super().__init__(transport, subject)
        self.pattern = subject[len(transport.prefix) + 1 :]
        self._targets: tuple[MemorySubscription, ...] = ()

    def add(self, sub: MemorySubscription) -> None:
        self.members.append(sub)
        self._targets = tuple(self.members)

    def remove(self, sub: MemorySubscription) -> None:
        if sub in self.members:
            self.members.remove(sub)
            self._targets = tuple(self.members)

    def _dispatch(self, event: Event) -> Awaitable[None] | None:
        # The hot receive path: offer to each local subscriber in turn, inline.
        targets = self._targets
        self._transport.arrived(event).delivered += len(targets)
        for sub in targets:
            full = sub.offer(event)
            if full is not None:
                return self._offer_rest(event, full, targets, targets.index(sub) + 1)
        return None

    @staticmethod
    async def _offer_rest(
        event: Event, full: Waiter, targets: tuple[MemorySubscription, ...], start: int
    ) -> None:
        await full.put_waiting(event)
        for sub in targets[start:]:
            more = sub.offer(event)
            if more is not None:
                await more.put_waiting(event)


class QueueFeed(NatsFeed):
    """A queue group: NATS picks this node, the local `Group` picks the member."""

    __slots__ = ("_group", "key")

    def __init__(self, transport: NatsTransport, subject: str, pattern: str, group: str) -> None:
        super().__init__(transport, subject, queue=group)
        self.key = (pattern, group)
        self._group = Group(pattern, group, 0)
        self.members = self._group.members

    def add(self, sub: MemorySubscription) -> None:
        self._group.members.append(sub)

    def remove(self, sub: MemorySubscription) -> None:
        if sub in self._group.members:
            self._group.members.remove(sub)

    def _dispatch(self, event: Event) -> Awaitable[None] | None:
        self._transport.arrived(event).delivered += 1
        full = self._group.offer(event)
        return None if full is None else full.put_waiting(event)
