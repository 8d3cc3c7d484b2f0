"""Event streams for SSE and WebSocket clients, and the replay buffer behind Last-Event-ID.

Every stream is a bus subscription whose handler only appends to a bounded buffer: a slow
client must never slow the bus down, so one that falls too far behind is told so and
disconnected (it resumes with Last-Event-ID from the replay buffer).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from aiohttp import web
from orrery.sdk import Bus, Event, Subscription, subject_matches

from ._frames import Frame, encode_frame, too_large_frame

__all__ = ["HUB", "ReplayBuffer", "StreamHub", "StreamSession"]

log = logging.getLogger("orrery.kernel.daemon")


class ReplayBuffer:
    """The most recent events on the bus, in publish order, bounded by count and bytes.

    Events are kept encoded (what the streams send), which is also what the byte bound
    counts: ``capacity`` events or ``max_bytes`` of JSON, whichever is reached first.
    An event larger than ``max_bytes`` on its own is kept as a ``too_large`` notice.

    Event ids are time-ordered (UUIDv7) and strictly increasing within the kernel, so
    "after ``last_id``" is a string comparison. The buffer lives in the daemon's memory:
    a restarted daemon cannot replay what was published before it started.
    """

    def __init__(self, capacity: int, max_bytes: int = 64 << 20) -> None:
        self.capacity = max(1, capacity)
        self.max_bytes = max(1, max_bytes)
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        #: Id of the newest event evicted so far: anything up to it can no longer be replayed.
        self._horizon: str | None = None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def size(self) -> int:
        """Bytes of JSON held."""
        return self._bytes

    @property
    def newest(self) -> str:
        """Id of the newest recorded event ("" when none)."""
        return self._frames[-1].id if self._frames else ""

    def stats(self) -> dict[str, int]:
        """What ``GET /v1/status`` reports: events and bytes held, and the bounds."""
        return {
            "events": len(self._frames),
            "bytes": self._bytes,
            "max_events": self.capacity,
            "max_bytes": self.max_bytes,
        }

    def record(self, event: Event) -> None:
        """Bus handler (sync, so the bus calls it inline); returns None: never a reply."""
        frame = encode_frame(event)
        if frame.size > self.max_bytes:
            frame = too_large_frame(event, frame.size, self.max_bytes)
        frames = self._frames
        frames.append(frame)
        self._bytes += frame.size
        while len(frames) > self.capacity or (self._bytes > self.max_bytes and len(frames) > 1):
            evicted = frames.popleft()
            self._bytes -= evicted.size
            self._horizon = evicted.id

    def since(self, last_id: str) -> tuple[list[Frame], bool]:
        """Frames of events published after ``last_id``, and whether some in between are lost."""
        frames = list(self._frames)
        after = [f for f in frames if f.id > last_id]
        known = any(f.id == last_id for f in frames)
        lost = not known and (
            (self._horizon is not None and last_id <= self._horizon)
            or (bool(frames) and last_id < frames[0].id)
        )
        return after, lost


class StreamSession:
    """One client's stream: a bounded buffer fed by a bus subscription."""

    def __init__(self, pattern: str, capacity: int) -> None:
        self.pattern = pattern
        self.capacity = capacity
        self.overflowed = False
        self.closed: str | None = None
        #: Id of the last event handed to the client; later duplicates are skipped.
        self.last_id = ""
        self._items: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._subscription: Subscription | None = None

    def attach(self, subscription: Subscription) -> None:
        """The bus subscription feeding this session (released by `close`)."""
        self._subscription = subscription

    def offer(self, event: Event) -> None:
        """Bus handler: buffer ``event``, or give up on a client that stopped reading."""
        if self.closed is not None:
            return
        if len(self._items) >= self.capacity:
            self.overflowed = True
            self.close(f"the client fell more than {self.capacity} events behind")
            return
        self._items.append(event)
        self._wake.set()

    def close(self, reason: str) -> None:
        """Stop the subscription and wake the writer, which then ends the stream."""
        if self.closed is None:
            self.closed = reason
        if self._subscription is not None:
            self._subscription.unsubscribe()
            self._subscription = None
        self._wake.set()

    async def next_batch(self, keepalive: float) -> list[Frame] | None:
        """Frames to send now (``[]`` after ``keepalive`` idle seconds), None when closed.

        Events already sent (by the replay) are dropped here, which keeps the order
        strictly increasing for the client.
        """
        while not self._items:
            if self.closed is not None:
                return None
            self._wake.clear()
            try:
                async with asyncio.timeout(keepalive):
                    await self._wake.wait()
            except TimeoutError:
                return []
        batch = [encode_frame(e) for e in self._items if e.id > self.last_id]
        self._items.clear()
        if batch:
            self.last_id = batch[-1].id
        return batch


class StreamHub:
    """Owns the replay buffer's subscription and every open stream."""

    def __init__(
        self, bus: Bus, *, replay_size: int, stream_queue: int, replay_bytes: int = 64 << 20
    ) -> None:
        self._bus = bus
        self.replay = ReplayBuffer(replay_size, replay_bytes)
        self._stream_queue = stream_queue
        self._sessions: set[StreamSession] = set()
        self._recorder: Subscription | None = None

    def start(self) -> None:
        """Start recording every event for replay."""
        self._recorder = self._bus.subscribe(">", self.replay.record)

    def stop(self) -> None:
        """Close every stream (they finish their response) and stop recording."""
        self.close_all("the daemon is shutting down")
        if self._recorder is not None:
            self._recorder.unsubscribe()
            self._recorder = None

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, pattern: str, last_id: str | None) -> tuple[StreamSession, list[Frame], bool]:
        """Subscribe, then collect the replay: subscribing first means nothing published
        in between is missed; the session's ``last_id`` drops the overlap."""
        session = StreamSession(pattern, self._stream_queue)
        session.attach(self._bus.subscribe(pattern, session.offer))
        self._sessions.add(session)
        backlog: list[Frame] = []
        lost = False
        if last_id:
            replayed, lost = self.replay.since(last_id)
            backlog = [f for f in replayed if subject_matches(pattern, f.type)]
            if backlog:
                session.last_id = backlog[-1].id
            elif last_id <= self.replay.newest:
                # Only an id we could have issued filters live events; a bogus one from
                # "the future" would otherwise silence the stream.
                session.last_id = last_id
        return session, backlog, lost

    def close(self, session: StreamSession, reason: str = "the client disconnected") -> None:
        """End one stream and forget it."""
        session.close(reason)
        self._sessions.discard(session)

    def close_all(self, reason: str) -> None:
        """End every open stream; each finishes its response with ``reason``."""
        for session in list(self._sessions):
            session.close(reason)


HUB = web.AppKey("hub", StreamHub)
