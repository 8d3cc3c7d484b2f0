"""`NatsBus`: the memory bus's local machinery, with NATS as the transport between nodes.

Each node keeps the memory bus's delivery semantics for its own subscribers: per
subscriber ordered bounded queues, inline sync delivery, retries and dead letters,
causation, hold/take-over for hot swaps. NATS carries events between nodes:

- fan-out: a publish is delivered to local subscribers in-process (as on the memory
  bus) and published once on core NATS, subject ``<prefix>.<topic>``, as CloudEvents
  JSON. The publishing connection is ``no_echo``, so the server never sends a node its
  own events back, and other nodes receive them through one NATS subscription per
  distinct pattern (`PatternFeed`).
- queue groups: only through NATS, one queue subscription per (pattern, group) per node
  on a second connection (which does receive its own node's publishes), so the server
  splits the events across nodes and each node's `Group` across its local members.
- durable subscriptions: JetStream (`JetStreamFeed`).
- request/reply: local responders answer in-process; the request also goes out on NATS
  with a reply subject under this bus's inbox prefix, so responders on other nodes (and
  queue groups) answer over NATS. With no responder anywhere, the server's "no
  responders" status raises `NoResponders` at once, as on the memory bus.

A subscription is registered with the server in the background; the next publish waits
for that, so an event published after ``subscribe`` returns is never missed by it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from orrery.kernel.bus._durable import DurableFeed, DurableSubscription
from orrery.kernel.bus._memory import MemoryBus
from orrery.kernel.bus._subscription import MemorySubscription
from orrery.kernel.bus.errors import BusClosed
from orrery.sdk import Event
from orrery.sdk.errors import InvalidEvent, NoResponders

from ._connect import connect
from ._fastpath import FastPublisher, round_trip, supported
from ._feeds import NatsFeed, PatternFeed, QueueFeed
from ._jetstream import JetStreamFeed
from ._wire import decode_event, encode_event

__all__ = ["NatsBus"]

log = logging.getLogger("orrery.bus.nats")


class NatsBus(MemoryBus):
    """The event bus over NATS (core for fan-out and request/reply, JetStream for durable
    subscriptions); same API and local semantics as `MemoryBus`.

    ``prefix`` is the first subject token of every event (``orrery.<topic>``): kernels
    with the same prefix on the same NATS share events. ``stream`` is the JetStream
    stream of durable subscriptions (default ``<PREFIX>_DURABLE``); ``ack_wait`` is how
    long an unacknowledged durable event stays with a node before another gets it.
    """

    def __init__(
        self,
        node_id: str,
        *,
        url: str = "nats://127.0.0.1:4222",
        prefix: str = "orrery",
        stream: str | None = None,
        ack_wait: float = 30.0,
        connect_timeout: float = 5.0,
        **options: Any,
    ) -> None:
        super().__init__(node_id, **options)
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
        # `publish` connection: no_echo (local subscribers were served in-process).
        self._pub: Client | None = None
        # `work` connection: queue groups and durable deliveries (it sees its own node's
        # publishes, which a queue group on this node must get its share of).
        self._work: Client | None = None
        self._js: JetStreamContext | None = None
        self._publish: Callable[[str, bytes, str], Awaitable[None] | None] = self._public_publish
        self._fanout: dict[str, PatternFeed] = {}
        self._queues: dict[tuple[str, str], QueueFeed] = {}
        self._registering: set[asyncio.Task[None]] = set()
        self._failures: list[BaseException] = []
        self._no_responders: dict[str, str] = {}
        self._inbox_sub: Any = None
        #: Messages received from NATS (for `flush`, and for tests).
        self._received = 0
        self._remote = self._send_remote

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to NATS (raising `BusUnavailable` if it cannot), then start."""
        if self.state in ("stopping", "stopped"):
            raise BusClosed(self, "start", "it was stopped; create a new NatsBus")
        if self._pub is None:
            name = f"orrery {self.node_id}"
            timeout = self.connect_timeout
            self._pub = await connect(
                self.url, name=f"{name} publish", no_echo=True, timeout=timeout
            )
            try:
                self._work = await connect(
                    self.url, name=f"{name} work", no_echo=False, timeout=timeout
                )
            except BaseException:
                await self._pub.close()
                self._pub = None
                raise
            fast = FastPublisher(self._pub) if supported(self._pub) else None
            self._publish = fast.publish if fast is not None else self._public_publish
            # On the publishing connection: the server answers "no responders" only to
            # a reply subject the publishing connection itself subscribes to.
            self._inbox_sub = await self._pub.subscribe(self._inbox_prefix + "*", cb=self._on_reply)
            await round_trip(self._pub)
        await super().start()
        for feed in self._all_feeds():
            if not feed.open:
                self._open_feed(feed)
        await self._registered()

    async def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued locally, close every NATS subscription, flush what was
        published and disconnect."""
        if self.state == "stopped":
            return
        await super().stop(timeout)
        # Awaited, not cancelled: a flush cancelled mid-way upsets nats-py's reader.
        await self._registered()
        for feed in self._all_feeds():
            await feed.unsubscribe()
        self._fanout.clear()
        self._queues.clear()
        for conn in (self._pub, self._work):
            if conn is not None and not conn.is_closed:
                try:
                    await round_trip(conn, timeout)
                except Exception as e:
                    log.warning("NATS flush on stop failed: %s", e)
                await conn.close()

    async def flush(self) -> None:
        """Return once what was published so far reached the server and everything this
        node received meanwhile was handled (repeated while handlers publish more)."""
        for _ in range(20):
            seen = self._received
            await self._registered(raise_failures=True)
            for conn in (self._pub, self._work):
                if conn is not None:
                    await round_trip(conn)
            for feed in self._all_feeds():
                await feed.settle()
            await self._quiesce()
            if self._received == seen:
                return

    def _all_feeds(self) -> list[NatsFeed]:
        feeds: list[NatsFeed] = [*self._fanout.values(), *self._queues.values()]
        for feed in self._feeds.values():
            if isinstance(feed, JetStreamFeed):
                feeds.append(feed)
        return feeds

    def _conn(self, which: str) -> Client:
        conn = self._pub if which == "publish" else self._work
        if conn is None:
            raise BusClosed(self, which, "the bus is not connected; await bus.start() first")
        return conn

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            self._js = self._conn("work").jetstream()
        return self._js

    def _subject(self, topic_or_pattern: str) -> str:
        return self._dot + topic_or_pattern

    # -- subscriptions -------------------------------------------------------------------

    def _attach(self, sub: MemorySubscription) -> None:
        if isinstance(sub, DurableSubscription):
            sub._feed.join(sub)
        elif sub.group is None:
            self._routes.add(sub)
            feed = self._fanout.get(sub.pattern)
            if feed is None:
                feed = self._fanout[sub.pattern] = PatternFeed(self, self._subject(sub.pattern))
                self._open_feed(feed)
            feed.add(sub)
        else:
            key = (sub.pattern, sub.group)
            queue = self._queues.get(key)
            if queue is None:
                queue = QueueFeed(self, self._subject(sub.pattern), sub.pattern, sub.group)
                self._queues[key] = queue
                self._open_feed(queue)
            queue.add(sub)

    def _detach(self, sub: MemorySubscription) -> None:
        if isinstance(sub, DurableSubscription):
            sub._feed.leave(sub)
            return
        feed: PatternFeed | QueueFeed | None
        if sub.group is None:
            self._routes.remove(sub)
            feed = self._fanout.get(sub.pattern)
        else:
            feed = self._queues.get((sub.pattern, sub.group))
        if feed is not None:
            feed.remove(sub)
            if not feed.members:
                # Deferred: a hot swap detaches the old subscription and attaches the new
                # one in one step; the NATS subscription should outlive that.
                asyncio.get_running_loop().call_soon(self._release_nats_feed, feed)

    def _release_nats_feed(self, feed: PatternFeed | QueueFeed) -> None:
        if feed.members or self.state == "stopped":
            return
        if isinstance(feed, PatternFeed):
            if self._fanout.get(feed.subject[len(self._dot) :]) is feed:
                del self._fanout[feed.subject[len(self._dot) :]]
        else:
            for key, queue in list(self._queues.items()):
                if queue is feed:
                    del self._queues[key]
        self._spawn(feed.unsubscribe(), f"orrery.bus unsubscribe {feed.subject}")

    def _wanted(self, feed: NatsFeed) -> bool:
        """Whether ``feed`` is still the bus's feed for its subscriptions."""
        if isinstance(feed, JetStreamFeed):
            return self._feeds.get(feed.name) is feed
        if isinstance(feed, PatternFeed):
            return self._fanout.get(feed.subject[len(self._dot) :]) is feed
        return any(queue is feed for queue in self._queues.values())

    def _new_feed(self, name: str, pattern: str) -> DurableFeed:
        return JetStreamFeed(self, name, pattern)

    def _open_feed(self, feed: NatsFeed) -> None:
        """Register ``feed`` with the server in the background (once connected)."""
        if self._work is None or self.state == "stopped" or feed.opening:
            return  # start() opens it, or it is being opened
        feed.opening = True
        task = asyncio.get_running_loop().create_task(
            self._open(feed), name=f"orrery.bus subscribe {feed.subject}"
        )
        self._registering.add(task)
        task.add_done_callback(self._registering.discard)

    async def _open(self, feed: NatsFeed) -> None:
        conn = self._conn("publish" if isinstance(feed, PatternFeed) else "work")
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

    # -- sending -------------------------------------------------------------------------

    def _send_remote(self, event: Event) -> Awaitable[None] | None:
        """Publish ``event`` on NATS: the hot path of every publish on this bus. A plain
        call; returns an awaitable only when the publisher must wait (a subscription
        still being registered, the connection's buffer full)."""
        if self._registering:
            return self._send_when_registered(event)
        topic = event.type
        if topic[0] == "_" and topic.startswith("_INBOX."):
            if topic.startswith(self._inbox_prefix):
                return None  # a reply to our own request: answered in-process already
            subject = topic
        else:
            subject = self._dot + topic
        return self._publish(subject, encode_event(event), event.replyto or "")

    async def _send_when_registered(self, event: Event) -> None:
        await self._registered()
        waiting = self._send_remote(event)
        if waiting is not None:
            await waiting

    def _public_publish(self, subject: str, payload: bytes, reply: str) -> Awaitable[None]:
        return self._conn("publish").publish(subject, payload, reply=reply)

    def _answer(self, replyto: str, value: Any) -> None:
        if replyto.startswith(self._inbox_prefix):
            super()._answer(replyto, value)
        elif self.accepting:
            self._spawn(self._send_reply(replyto, value), f"orrery.bus reply {replyto}")

    async def _send_reply(self, replyto: str, value: Any) -> None:
        now = time.time_ns()
        event = Event(
            id=self._next_id(now), type=replyto, source=self.source, time_ns=now, data=value
        )
        await self._conn("publish").publish(replyto, encode_event(event))

    def _open_inbox(self, topic: str | None = None) -> tuple[str, asyncio.Future[Any]]:
        inbox, future = super()._open_inbox(topic)
        if topic is not None:
            self._no_responders[inbox] = topic
        return inbox, future

    def _close_inbox(self, inbox: str) -> None:
        super()._close_inbox(inbox)
        self._no_responders.pop(inbox, None)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._inboxes.get(msg.subject)
        if future is None or future.done():
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
        return (
            f"<NatsBus node={self.node_id!r} {self.state} url={self.url!r} "
            f"prefix={self.prefix!r} clients={len(self._clients)}>"
        )
