"""`NatsTransport`: NATS as the transport between nodes of the local bus.

Each node keeps the local bus's delivery semantics for its own subscribers; NATS carries
events between nodes:

- fan-out: a publish is delivered to local subscribers in-process and published once on
  core NATS, subject ``<prefix>.<topic>``, as CloudEvents JSON. The publishing
  connection is ``no_echo``, so the server never sends a node its own events back, and
  other nodes receive them through one NATS subscription per distinct pattern
  (`PatternFeed`).
- queue groups: only through NATS, one queue subscription per (pattern, group) per node
  on a second connection (which does receive its own node's publishes), so the server
  splits the events across nodes and each node's `Group` across its local members.
- durable subscriptions: JetStream (`JetStreamFeed`, made by `feed_factory`).
- request/reply: local responders answer in-process; the request also goes out on NATS
  with a reply subject under the bus's inbox prefix, so responders on other nodes (and
  queue groups) answer over NATS. With no responder anywhere, the server's "no
  responders" status raises `NoResponders` at once, as on the memory bus.

A subscription is registered with the server in the background; the next publish waits
for that, so an event published after ``subscribe`` returns is never missed by it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from orrery.kernel.bus import (
    BusClosed,
    BusPort,
    DurableFeed,
    FeedFactory,
    MemorySubscription,
    Traffic,
)
from orrery.sdk import Event
from orrery.sdk.errors import InvalidEvent, NoResponders

from ._connect import connect
from ._fastpath import FastPublisher, round_trip, supported
from ._feeds import NatsFeed, PatternFeed, QueueFeed
from ._jetstream import JetStreamFeed
from ._wire import decode_event, encode_event

__all__ = ["NatsTransport"]

log = logging.getLogger("orrery.bus.nats")


class NatsTransport:
    """Core NATS for fan-out, queue groups and request/reply, JetStream for durable
    subscriptions (implements `orrery.kernel.bus.transport.Transport`)."""

    def __init__(
        self,
        *,
        url: str = "nats://127.0.0.1:4222",
        prefix: str = "orrery",
        stream: str | None = None,
        ack_wait: float = 30.0,
        connect_timeout: float = 5.0,
    ) -> None:
        if not prefix or any(c in prefix for c in " *>") or prefix.strip(".") != prefix:
            raise ValueError(f"prefix must be a subject like 'orrery', got {prefix!r}")
        if ack_wait <= 0:
            raise ValueError(f"ack_wait must be positive, got {ack_wait!r}")
        self.url = url
        self.prefix = prefix
        self.stream = stream or prefix.upper().replace(".", "_") + "_DURABLE"
        self.ack_wait = ack_wait
        self.connect_timeout = connect_timeout
        self._dot = prefix + "."
        self._port: BusPort | None = None
        # `publish` connection: no_echo (local subscribers were served in-process).
        self._pub: Client | None = None
        # `work` connection: queue groups and durable deliveries (it sees its own node's
        # publishes, which a queue group on this node must get its share of).
        self._work: Client | None = None
        self._js: JetStreamContext | None = None
        self._publish: Callable[[str, bytes, str], Awaitable[None] | None] = self._public_publish
        self._fanout: dict[str, PatternFeed] = {}
        self._queues: dict[tuple[str, str], QueueFeed] = {}
        self._durables: dict[str, JetStreamFeed] = {}
        self._registering: set[asyncio.Task[None]] = set()
        self._failures: list[BaseException] = []
        self._no_responders: dict[str, str] = {}
        #: Messages received from NATS (for `flush`, and for tests).
        self.received = 0

    # -- what feeds use ------------------------------------------------------------------

    @property
    def port(self) -> BusPort:
        """The bus this transport serves."""
        if self._port is None:
            raise BusClosed(self, "use", "the transport is not started by a bus yet")
        return self._port

    @property
    def queue_size(self) -> int:
        return self.port.queue_size

    def conn(self, which: str) -> Client:
        """The ``publish`` or ``work`` connection."""
        conn = self._pub if which == "publish" else self._work
        if conn is None:
            raise BusClosed(self, which, "the bus is not connected; await bus.start() first")
        return conn

    def jetstream(self) -> JetStreamContext:
        if self._js is None:
            self._js = self.conn("work").jetstream()
        return self._js

    def subject(self, topic_or_pattern: str) -> str:
        """The NATS subject of a topic or pattern (under the prefix)."""
        return self._dot + topic_or_pattern

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.port.spawn(coro, name)

    def start_feeder(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        return self.port.start_feeder(coro, name)

    def arrived(self, event: Event) -> Traffic:
        """Count a message received from NATS; the traffic counters of its topic."""
        self.received += 1
        return self.port.traffic_book.of(event.type)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, bus: BusPort) -> None:
        """Connect to NATS (raising `BusUnavailable` if it cannot)."""
        self._port = bus
        if self._pub is not None:
            return
        name = f"orrery {bus.node_id}"
        timeout = self.connect_timeout
        url = self.url
        self._pub = await connect(url, name=f"{name} publish", no_echo=True, timeout=timeout)
        try:
            self._work = await connect(url, name=f"{name} work", no_echo=False, timeout=timeout)
        except BaseException:
            await self._pub.close()
            self._pub = None
            raise
        fast = FastPublisher(self._pub) if supported(self._pub) else None
        self._publish = fast.publish if fast is not None else self._public_publish
        # On the publishing connection: the server answers "no responders" only to a
        # reply subject the publishing connection itself subscribes to.
        await self._pub.subscribe(bus.inbox_prefix + "*", cb=self._on_reply)
        await round_trip(self._pub)

    async def opened(self) -> None:
        for feed in self._all_feeds():
            if not feed.open:
                self.open_feed(feed)
        await self._registered()

    async def stop(self, timeout: float) -> None:
        """Close every NATS subscription, flush what was published and disconnect."""
        # Awaited, not cancelled: a flush cancelled mid-way upsets nats-py's reader.
        await self._registered()
        for feed in self._all_feeds():
            await feed.unsubscribe()
        self._fanout.clear()
        self._queues.clear()
        self._durables.clear()
        for conn in (self._pub, self._work):
            if conn is not None and not conn.is_closed:
                try:
                    await round_trip(conn, timeout)
                except Exception as e:
                    log.warning("NATS flush on stop failed: %s", e)
                await conn.close()

    async def flush(self) -> None:
        port = self.port
        for _ in range(20):
            seen = self.received
            await self._registered(raise_failures=True)
            for conn in (self._pub, self._work):
                if conn is not None:
                    await round_trip(conn)
            for feed in self._all_feeds():
                await feed.settle()
            await port.quiesce()
            if self.received == seen:
                return

    def _all_feeds(self) -> list[NatsFeed]:
        return [*self._fanout.values(), *self._queues.values(), *self._durables.values()]

    # -- subscriptions -------------------------------------------------------------------

    def attach(self, sub: MemorySubscription) -> bool:
        if sub.group is None:
            feed = self._fanout.get(sub.pattern)
            if feed is None:
                feed = self._fanout[sub.pattern] = PatternFeed(self, self.subject(sub.pattern))
                self.open_feed(feed)
            feed.add(sub)
            return False
        key = (sub.pattern, sub.group)
        queue = self._queues.get(key)
        if queue is None:
            queue = QueueFeed(self, self.subject(sub.pattern), sub.pattern, sub.group)
            self._queues[key] = queue
            self.open_feed(queue)
        queue.add(sub)
        return True

    def detach(self, sub: MemorySubscription) -> bool:
        feed: PatternFeed | QueueFeed | None
        if sub.group is None:
            feed = self._fanout.get(sub.pattern)
        else:
            feed = self._queues.get((sub.pattern, sub.group))
        if feed is not None:
            feed.remove(sub)
            if not feed.members:
                # Deferred: a hot swap detaches the old subscription and attaches the new
                # one in one step; the NATS subscription should outlive that.
                asyncio.get_running_loop().call_soon(self._release, feed)
        return sub.group is not None

    def _release(self, feed: PatternFeed | QueueFeed) -> None:
        if feed.members or self.port.state == "stopped":
            return
        if isinstance(feed, PatternFeed):
            if self._fanout.get(feed.pattern) is feed:
                del self._fanout[feed.pattern]
        elif self._queues.get(feed.key) is feed:
            del self._queues[feed.key]
        self.spawn(feed.unsubscribe(), f"orrery.bus unsubscribe {feed.subject}")

    def feed_factory(self) -> FeedFactory:
        def factory(
            name: str, pattern: str, on_empty: Callable[[DurableFeed], None]
        ) -> DurableFeed:
            feed = JetStreamFeed(self, name, pattern, on_empty=self._closing(on_empty))
            self._durables[name] = feed
            return feed

        return factory

    def _closing(self, on_empty: Callable[[DurableFeed], None]) -> Callable[[DurableFeed], None]:
        def closing(feed: DurableFeed) -> None:
            on_empty(feed)
            if not feed.members and self._durables.get(feed.name) is feed:
                del self._durables[feed.name]

        return closing

    def _wanted(self, feed: NatsFeed) -> bool:
        """Whether ``feed`` is still the transport's feed for its subscriptions."""
        if isinstance(feed, JetStreamFeed):
            return self._durables.get(feed.name) is feed
        if isinstance(feed, PatternFeed):
            return self._fanout.get(feed.pattern) is feed
        return any(queue is feed for queue in self._queues.values())

    def open_feed(self, feed: NatsFeed) -> None:
        """Register ``feed`` with the server in the background (once connected)."""
        if self._work is None or self.port.state == "stopped" or feed.opening:
            return  # opened() opens it, or it is being opened
        feed.opening = True
        task = asyncio.get_running_loop().create_task(
            self._open(feed), name=f"orrery.bus subscribe {feed.subject}"
        )
        self._registering.add(task)
        task.add_done_callback(self._registering.discard)

    async def _open(self, feed: NatsFeed) -> None:
        conn = self.conn("publish" if isinstance(feed, PatternFeed) else "work")
        try:
            await feed.subscribe(conn)
            if not self._wanted(feed):
                await feed.unsubscribe()  # its last subscriber left while it was opening
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error("cannot subscribe to %s on NATS: %s", feed.subject, e)
            self._failures.append(e)
        finally:
            feed.opening = False

    async def _registered(self, *, raise_failures: bool = False) -> None:
        """Wait for subscriptions being registered; optionally raise the first failure."""
        while self._registering:
            await asyncio.gather(*list(self._registering), return_exceptions=True)
        if raise_failures and self._failures:
            error = self._failures.pop(0)
            self._failures.clear()
            raise error

    @property
    def subscriptions(self) -> dict[str, list[str]]:
        """The NATS subscriptions in place: fan-out patterns, queue groups, durables."""
        return {
            "fanout": sorted(self._fanout),
            "queues": sorted(f"{p} {g}" for p, g in self._queues),
            "durables": sorted(self._durables),
        }

    # -- sending -------------------------------------------------------------------------

    def send(self, event: Event) -> Awaitable[None] | None:
        """Publish ``event`` on NATS: the hot path of every publish on this bus. A plain
        call; returns an awaitable only when the publisher must wait (a subscription
        still being registered, the connection's buffer full)."""
        if self._registering:
            return self._send_when_registered(event)
        topic = event.type
        if topic[0] == "_" and topic.startswith("_INBOX."):
            if topic.startswith(self.port.inbox_prefix):
                return None  # a reply to our own request: answered in-process already
            subject = topic
        else:
            subject = self._dot + topic
        return self._publish(subject, encode_event(event), event.replyto or "")

    async def _send_when_registered(self, event: Event) -> None:
        await self._registered()
        waiting = self.send(event)
        if waiting is not None:
            await waiting

    def _public_publish(self, subject: str, payload: bytes, reply: str) -> Awaitable[None]:
        return self.conn("publish").publish(subject, payload, reply=reply)

    def reply(self, replyto: str, value: Any) -> None:
        self.spawn(self._send_reply(replyto, value), f"orrery.bus reply {replyto}")

    async def _send_reply(self, replyto: str, value: Any) -> None:
        port = self.port
        now = time.time_ns()
        event = Event(
            id=port.next_id(now), type=replyto, source=port.source, time_ns=now, data=value
        )
        await self.conn("publish").publish(replyto, encode_event(event))

    def expect_reply(self, inbox: str, topic: str | None) -> None:
        if topic is not None:
            self._no_responders[inbox] = topic

    def forget_reply(self, inbox: str) -> None:
        self._no_responders.pop(inbox, None)

    async def _on_reply(self, msg: Msg) -> None:
        future = self.port.inbox_future(msg.subject)
        if future is None:
            return
        if not msg.data:
            headers = msg.headers or {}
            if headers.get("Status") == "503":
                topic = self._no_responders.get(msg.subject)
                if topic is not None:
                    future.set_exception(NoResponders(topic))
            return
        try:
            future.set_result(decode_event(msg.data).data)
        except InvalidEvent as e:
            log.warning("ignoring a reply on %s that is not a CloudEvent: %s", msg.subject, e)

    def __repr__(self) -> str:
        return f"<NatsTransport url={self.url!r} prefix={self.prefix!r}>"
