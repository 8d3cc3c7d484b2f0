"""The replay buffer and stream sessions on their own."""

from __future__ import annotations

from orrery.kernel.daemon import ReplayBuffer
from orrery.kernel.daemon._streams import StreamSession
from orrery.sdk import Event, new_event_id


def event(n: int) -> Event:
    return Event(id=new_event_id(), type=f"t.{n % 2}", source="orrery://n/test", time_ns=n, data=n)


def test_since_a_known_id_returns_what_followed_without_a_gap() -> None:
    buffer = ReplayBuffer(10)
    events = [event(i) for i in range(5)]
    for e in events:
        buffer.record(e)
    after, lost = buffer.since(events[1].id)
    assert [e.data for e in after] == [2, 3, 4] and not lost
    assert buffer.since(events[-1].id) == ([], False)


def test_an_evicted_id_is_reported_as_a_gap() -> None:
    buffer = ReplayBuffer(3)
    events = [event(i) for i in range(6)]
    for e in events:
        buffer.record(e)
    after, lost = buffer.since(events[0].id)
    assert [e.data for e in after] == [3, 4, 5] and lost
    assert len(buffer) == 3 and buffer.newest == events[-1].id


def test_an_id_from_the_future_replays_nothing() -> None:
    buffer = ReplayBuffer(3)
    buffer.record(event(0))
    assert buffer.since("ffffffff-ffff-7fff-bfff-ffffffffffff") == ([], False)


async def test_a_session_drops_duplicates_and_closes_on_overflow() -> None:
    session = StreamSession(">", capacity=3)
    events = [event(i) for i in range(5)]
    session.last_id = events[0].id
    for e in events[:3]:
        session.offer(e)
    assert [e.data for e in await session.next_batch(1.0) or []] == [1, 2]
    for e in events:
        session.offer(e)
    assert session.overflowed and session.closed
    # What was buffered before the overflow was already sent: nothing new, then the end.
    assert await session.next_batch(1.0) == []
    assert await session.next_batch(1.0) is None
