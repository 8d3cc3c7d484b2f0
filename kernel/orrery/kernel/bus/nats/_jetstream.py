"""Durable subscriptions on NATS: one JetStream stream, one durable consumer per name.

Stream: one per bus prefix (``ORRERY_DURABLE`` by default), interest retention, file
storage. Its subjects are the (prefixed) patterns of every durable subscription, kept
minimal (a pattern covered by another is dropped) because JetStream refuses overlapping
subjects. Publishers keep publishing core NATS messages; the server stores those that
match, so a publisher needs to know nothing about who subscribes durably, on any node.

Consumer: one durable push consumer per durable name, filtered on the pattern, explicit
acks, delivered to a deliver group of the same name. Every node subscribing with that
durable name joins the group, so the nodes compete for its events (a durable group is
the same thing), and a message one node took but never acknowledged (it was killed) is
delivered to another after ``ack_wait``. Locally the message goes to one member
subscription; its worker acknowledges once the handler returned (or the event was
dead-lettered), so delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from orrery.kernel.bus import BusError, DurableFeed, InvalidDurable, MemorySubscription
from orrery.sdk import Event
from orrery.sdk.errors import InvalidEvent

from ._feeds import NatsFeed
from ._wire import decode_event

if TYPE_CHECKING:
    from ._transport import NatsTransport

__all__ = ["JetStreamFeed", "consumer_name", "covers", "ensure_stream_subject"]

log = logging.getLogger("orrery.bus.nats")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def consumer_name(durable: str) -> str:
    """A JetStream consumer name for ``durable`` ('.' and the like are not allowed)."""
    safe = _UNSAFE.sub("_", durable)
    if safe == durable:
        return safe
    return f"{safe}_{hashlib.sha1(durable.encode()).hexdigest()[:8]}"


def covers(general: str, specific: str) -> bool:
    """Whether subject pattern ``general`` matches everything ``specific`` matches."""
    g, s = general.split("."), specific.split(".")
    for index, token in enumerate(g):
        if token == ">":
            return index < len(s)
        if index >= len(s):
            return False
        if token == "*":
            if s[index] == ">":
                return False
        elif token != s[index]:
            return False
    return len(g) == len(s)


async def ensure_stream_subject(js: JetStreamContext, stream: str, subject: str) -> None:
    """Make ``stream`` (created if missing) capture ``subject``.

    Several nodes may do this at once: each retries on a conflict and re-reads the
    configuration until the subject is covered.
    """
    last: Exception | None = None
    for _ in range(10):
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            try:
                await js.add_stream(
                    name=stream,
                    subjects=[subject],
                    retention=api.RetentionPolicy.INTEREST,
                    storage=api.StorageType.FILE,
                )
                return
            except Exception as e:  # another node created it first: look again
                last = e
                continue
        subjects = list(info.config.subjects or [])
        if any(covers(existing, subject) for existing in subjects):
            return
        config = info.config
        config.subjects = [s for s in subjects if not covers(subject, s)] + [subject]
        try:
            await js.update_stream(config=config)
        except Exception as e:
            last = e
    raise BusError(
        f"cannot make JetStream stream {stream!r} capture {subject!r}: {last}. Check that "
        f"no other stream captures overlapping subjects (nats stream ls) and that JetStream "
        f"is enabled on the server"
    )


class JetStreamFeed(NatsFeed):
    """One durable name on a `NatsBus` (implements `DurableFeed`)."""

    __slots__ = (
        "_acks",
        "_closed",
        "_consumer",
        "_flushing",
        "_name",
        "_on_empty",
        "_outbox",
        "_pattern",
        "_turn",
    )

    #: JetStream deliveries need the reply subject (the ack address): the pump path.
    DIRECT = False

    def __init__(
        self,
        transport: NatsTransport,
        name: str,
        pattern: str,
        *,
        on_empty: Callable[[DurableFeed], None],
    ) -> None:
        self._name = name
        self._pattern = pattern
        self._on_empty = on_empty
        self._consumer = consumer_name(name)
        # Outside the stream's subjects, so delivered messages are never captured again.
        deliver = f"_ORRERY_DELIVER.{transport.stream}.{self._consumer}"
        super().__init__(transport, deliver, queue=self._consumer)
        self._acks: dict[str, list[str]] = {}  # event id -> ack subjects, in arrival order
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._flushing = False
        self._closed = False
        self._turn = 0

    @property
    def name(self) -> str:
        """The durable name."""
        return self._name

    @property
    def pattern(self) -> str:
        """The pattern every member subscribes to."""
        return self._pattern

    @property
    def target(self) -> None:
        """None: publishers reach JetStream through core NATS, not through a route."""
        return None

    def join(self, member: MemorySubscription) -> None:
        """Offer events to ``member``; the first member opens the consumer."""
        if member not in self.members:
            self.members.append(member)
        if not self.open:
            self._transport.open_feed(self)

    def leave(self, member: MemorySubscription) -> None:
        """Stop offering events to ``member``."""
        if member in self.members:
            self.members.remove(member)
        if not self.members:
            asyncio.get_running_loop().call_soon(self._on_empty, self)

    async def subscribe(self, conn: Any) -> None:
        """Create the stream subject and the consumer if needed, then take deliveries."""
        bus = self._transport
        js = bus.jetstream()
        subject = bus.subject(self._pattern)
        await ensure_stream_subject(js, bus.stream, subject)
        try:
            info = await js.consumer_info(bus.stream, self._consumer)
        except NotFoundError:
            info = None
        if info is not None:
            existing = info.config.filter_subject
            if existing != subject:
                raise InvalidDurable(
                    self._name,
                    self._pattern,
                    f"JetStream consumer {self._consumer!r} on stream {bus.stream!r} filters "
                    f"{existing!r}; delete it (nats consumer rm) or use another durable name",
                )
        else:
            await js.add_consumer(
                bus.stream,
                api.ConsumerConfig(
                    durable_name=self._consumer,
                    deliver_subject=self.subject,
                    deliver_group=self._consumer,
                    deliver_policy=api.DeliverPolicy.NEW,
                    filter_subject=subject,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    ack_wait=bus.ack_wait,
                    max_ack_pending=bus.queue_size * 4,
                ),
            )
        await super().subscribe(conn)

    def _handle(self, msg: Msg) -> Awaitable[None] | None:
        return self._take_delivery(msg)

    async def _take_delivery(self, msg: Msg) -> None:
        if not msg.reply:
            return  # not a JetStream delivery (nothing to acknowledge it with)
        try:
            event = decode_event(msg.data)
        except InvalidEvent as e:
            log.warning(
                "durable %r: dropping a message that is not a CloudEvent: %s", self._name, e
            )
            self._queue_ack(msg.reply, b"+TERM")
            return
        self._transport.arrived(event).delivered += 1
        members = self.members
        if not members or self._closed:
            self._queue_ack(msg.reply, b"-NAK")  # let another node have it now
            return
        self._acks.setdefault(event.id, []).append(msg.reply)
        count = len(members)
        start = self._turn % count
        member = members[start]
        for step in range(count):
            candidate = members[(start + step) % count]
            if candidate.has_room():
                member = candidate
                self._turn = start + step + 1
                break
        full = member.offer(event)
        if full is not None:
            await full.put_waiting(event)

    def acknowledge(self, event: Event) -> None:
        """Send the ack for ``event`` (batched with others sent meanwhile)."""
        replies = self._acks.get(event.id)
        if not replies:
            return
        reply = replies.pop(0)
        if not replies:
            del self._acks[event.id]
        self._queue_ack(reply, b"+ACK")

    def requeue(self, events: Sequence[Event]) -> None:
        """Give ``events`` back to the server now (-NAK): a member left unfinished."""
        for event in events:
            replies = self._acks.get(event.id)
            if replies:
                self._queue_ack(replies.pop(0), b"-NAK")
                if not replies:
                    del self._acks[event.id]

    def _queue_ack(self, reply: str, body: bytes) -> None:
        self._outbox.append((reply, body))
        if not self._flushing:
            self._flushing = True
            self._transport.spawn(self._send_acks(), f"orrery.bus acks {self._name}")

    async def _send_acks(self) -> None:
        publish = self._transport.conn("publish").publish
        outbox = self._outbox
        try:
            # An entry leaves the outbox only once published: if this task is cancelled
            # mid-send (the bus stopping), `close` still sends what is left. A repeated
            # ACK or NAK is harmless to JetStream; a lost NAK delays redelivery.
            while outbox:
                reply, body = outbox[0]
                await publish(reply, body)
                if outbox and outbox[0] == (reply, body):
                    outbox.popleft()
        except Exception as e:
            log.warning("durable %r: cannot acknowledge (redelivered later): %s", self._name, e)
        finally:
            self._flushing = False

    def idle_waiter(self) -> asyncio.Future[None] | None:
        """Always None: what the server still holds is not this node's to wait for."""
        return None

    async def close(self) -> None:
        """Stop taking deliveries; what is unacknowledged is redelivered by the server."""
        self._closed = True
        await self.unsubscribe()
        # Hand what this node took but did not finish to another node now, rather than
        # after ack_wait (a clean stop; after a crash the server's timer does it).
        naks = [(reply, b"-NAK") for replies in self._acks.values() for reply in replies]
        self._acks.clear()
        # Sent here, not by a task: the bus cancels its tasks right after closing feeds.
        outbox = [*self._outbox, *naks]
        self._outbox.clear()
        try:
            publish = self._transport.conn("publish").publish
            for reply, body in outbox:
                await publish(reply, body)
        except Exception as e:
            log.warning("durable %r: cannot hand back unfinished events: %s", self._name, e)

    def stats(self) -> dict[str, Any]:
        """Name, pattern, consumer, in-flight count and members."""
        return {
            "name": self._name,
            "pattern": self._pattern,
            "consumer": self._consumer,
            "in_flight": sum(len(r) for r in self._acks.values()),
            "members": len(self.members),
        }
