"""The per-message paths between the bus and nats-py, without per-message coroutines.

nats-py's public ``publish`` is three nested coroutines per message, and each received
message becomes a `Msg`, goes through a queue and an awaited callback; for an event bus
whose own work per event is about a microsecond those layers cost more than the bus.

- `FastPublisher` does what ``Client.publish`` does (append the PUB command to the
  pending buffer, wake the flusher) in a plain call.
- `DirectClient` hands the payload of a registered subscription straight from the
  protocol reader to a plain-call handler; when that handler must wait (a full local
  queue) later messages of the subscription queue up behind it, in order, and the
  reader carries on (it also reads replies and PINGs, so it must never block).
- `pump` drains a subscription's pending queue in batches (JetStream deliveries, which
  need the whole `Msg`).

All three use nats-py internals; `supported` and `DIRECT_SUPPORTED` check that they are
there (as in the nats-py versions this was written against, >= 2.6). Without them the
bus uses the public API.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

__all__ = [
    "DIRECT_SUPPORTED",
    "DirectClient",
    "DirectRoute",
    "FastPublisher",
    "pump",
    "round_trip",
    "supported",
]

log = logging.getLogger("orrery.bus.nats")
_CLIENT_PARTS = ("_pending", "_pending_data_size", "_max_pending_size", "_flush_queue", "stats")
_SUBSCRIPTION_PARTS = ("_pending_queue", "_pending_size")


#: Whether nats-py's reader calls ``_process_msg(sid, subject, reply, data, headers)``.
DIRECT_SUPPORTED = list(inspect.signature(Client._process_msg).parameters) == [
    "self",
    "sid",
    "subject",
    "reply",
    "data",
    "headers",
]
#: Messages a direct subscription may hold back while a local queue is full; beyond
#: that they are dropped with a warning, as nats-py does for a slow consumer (this is
#: nats-py's default pending-messages limit).
BACKLOG_LIMIT = 512 * 1024

DirectHandler = Callable[[bytes], Awaitable[None] | None]


class DirectRoute:
    """One subscription's handler, and what queued up behind a handler that waits."""

    __slots__ = ("backlog", "drained", "handle", "subject", "task")

    def __init__(self, handle: DirectHandler, subject: str) -> None:
        self.handle = handle
        self.subject = subject
        self.backlog: deque[bytes] = deque()
        self.task: asyncio.Task[None] | None = None
        self.drained: asyncio.Future[None] | None = None

    def take(self, data: bytes) -> None:
        if self.task is not None:
            if len(self.backlog) >= BACKLOG_LIMIT:
                log.warning("slow subscriber on %s: dropping a message", self.subject)
                return
            self.backlog.append(data)
            return
        try:
            waiting = self.handle(data)
        except Exception:
            log.exception("error dispatching a message on %s", self.subject)
            return
        if waiting is not None:
            self.task = asyncio.get_running_loop().create_task(self._drain(waiting))

    async def _drain(self, waiting: Awaitable[None]) -> None:
        try:
            await waiting
            backlog = self.backlog
            while backlog:
                try:
                    more = self.handle(backlog.popleft())
                    if more is not None:
                        await more
                except Exception:
                    log.exception("error dispatching a message on %s", self.subject)
        finally:
            self.task = None
            drained, self.drained = self.drained, None
            if drained is not None and not drained.done():
                drained.set_result(None)

    async def settle(self) -> None:
        """Return once nothing is held back."""
        if self.task is not None:
            if self.drained is None:
                self.drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self.drained)

    def cancel(self) -> None:
        self.backlog.clear()
        if self.task is not None:
            self.task.cancel()


class DirectClient(Client):
    """A nats-py client whose registered subscriptions bypass `Msg` and queues."""

    def __init__(self) -> None:
        super().__init__()
        self._direct: dict[int, DirectRoute] = {}

    def direct(self, nsub: Subscription, handle: DirectHandler) -> DirectRoute | None:
        """Route ``nsub``'s messages (subscribed without a callback) to ``handle``;
        None when this nats-py cannot (then use `pump`)."""
        if not DIRECT_SUPPORTED or not hasattr(nsub, "_pending_queue"):
            return None
        direct = self._direct[nsub._id] = DirectRoute(handle, nsub.subject)
        queue: asyncio.Queue[Msg] = nsub._pending_queue
        while not queue.empty():  # anything that arrived before we took over, in order
            direct.take(queue.get_nowait().data)
        return direct

    def undirect(self, nsub: Subscription) -> None:
        """Stop routing ``nsub``'s messages; what is held back is dropped."""
        direct = self._direct.pop(nsub._id, None)
        if direct is not None:
            direct.cancel()

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes
    ) -> None:
        direct = self._direct.get(sid)
        if direct is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        # NATS headers, if a foreign publisher sent any, carry nothing an event needs:
        # a structured-mode CloudEvent is entirely in the payload.
        stats = self.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        direct.take(data)


async def round_trip(conn: Client, timeout: float = 10.0) -> None:
    """Return once the server has processed everything sent on ``conn`` so far.

    ``Client.flush`` alone does not promise that: it writes its PING straight to the
    socket, ahead of commands still in the pending buffer, so the PONG can come back
    before earlier publishes or subscriptions reached the server. The buffer is written
    out first.
    """
    if not conn.is_connected:
        return
    flush_pending: Any = getattr(conn, "_flush_pending", None)
    if flush_pending is not None and getattr(conn, "_pending_data_size", 0) > 0:
        await flush_pending(force_flush=True)
    await conn.flush(timeout=max(1, round(timeout)))


def supported(conn: Client) -> bool:
    """Whether ``conn`` has the internals `FastPublisher` uses."""
    return all(hasattr(conn, name) for name in _CLIENT_PARTS)


class FastPublisher:
    """``publish(subject, payload, reply)`` as a plain call; returns an awaitable only
    when the caller must wait (buffer over its limit, not connected)."""

    __slots__ = ("_conn", "_loop", "_max_payload")

    def __init__(self, conn: Client) -> None:
        self._conn = conn
        self._loop = asyncio.get_running_loop()
        self._max_payload = conn.max_payload

    def publish(self, subject: str, payload: bytes, reply: str = "") -> Awaitable[None] | None:
        conn: Any = self._conn
        size = len(payload)
        if not conn.is_connected or size > self._max_payload:
            # Reconnecting (nats-py buffers), closed or too big (it raises): its own path.
            return conn.publish(subject, payload, reply=reply)  # type: ignore[no-any-return]
        if reply:
            head = f"PUB {subject} {reply} {size}\r\n"
        else:
            head = f"PUB {subject} {size}\r\n"
        command = head.encode() + payload + b"\r\n"
        conn._pending.append(command)
        pending = conn._pending_data_size = conn._pending_data_size + len(command)
        stats = conn.stats
        stats["out_msgs"] += 1
        stats["out_bytes"] += size
        if 0 < conn._max_pending_size < pending:
            return conn._flush_pending(force_flush=True)  # type: ignore[no-any-return]
        flush_queue = conn._flush_queue
        if flush_queue.empty():
            flush_queue.put_nowait(self._loop.create_future())
        return None


async def pump(nsub: Subscription, handle: Callable[[Msg], Awaitable[None] | None]) -> None:
    """Hand every message of ``nsub`` (subscribed without a callback) to ``handle``,
    draining what has arrived without a wait per message; returns when cancelled."""
    if not all(hasattr(nsub, name) for name in _SUBSCRIPTION_PARTS):
        async for msg in nsub.messages:  # the public API, one await per message
            await _call(handle, msg)
        return
    queue: asyncio.Queue[Msg] = nsub._pending_queue
    sub: Any = nsub
    while True:
        msg = await queue.get()
        while True:
            sub._pending_size -= len(msg.data)
            try:
                waiting = handle(msg)  # a plain call: most messages need no await at all
                if waiting is not None:
                    await waiting
            except Exception:
                log.exception("error dispatching a message on %s", msg.subject)
            finally:
                queue.task_done()
            if queue.empty():
                break
            msg = queue.get_nowait()


async def _call(handle: Callable[[Msg], Awaitable[None] | None], msg: Msg) -> None:
    try:
        waiting = handle(msg)
        if waiting is not None:
            await waiting
    except Exception:
        log.exception("error dispatching a message on %s", msg.subject)
