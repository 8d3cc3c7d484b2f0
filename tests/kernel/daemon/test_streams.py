"""The replay buffer and stream sessions on their own."""

from __future__ import annotations

import json
from typing import Any

from orrery.kernel.daemon import ReplayBuffer
from orrery.kernel.daemon._streams import StreamSession
from orrery.sdk import Event, new_event_id


def event(n: int, data: Any = None) -> Event:
    return Event(
        id=new_event_id(),
        type=f"t.{n % 2}",
        source="orrery://n/test",
        time_ns=n,
        data=n if data is None else data,
    )


def datas(frames: list[Any]) -> list[Any]:
    return [json.loads(f.payload)["data"] for f in frames]


def test_since_a_known_id_returns_what_followed_without_a_gap() -> None:
    buffer = ReplayBuffer(10)
    events = [event(i) for i in range(5)]
    for e in events:
        buffer.record(e)
    after, lost = buffer.since(events[1].id)
    assert datas(after) == [2, 3, 4] and not lost
    assert buffer.since(events[-1].id) == ([], False)


def test_an_evicted_id_is_reported_as_a_gap() -> None:
    buffer = ReplayBuffer(3)
    events = [event(i) for i in range(6)]
    for e in events:
        buffer.record(e)
    after, lost = buffer.since(events[0].id)
    assert datas(after) == [3, 4, 5] and lost
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
    assert datas(await session.next_batch(1.0) or []) == [1, 2]
    for e in events:
        session.offer(e)
    assert session.overflowed and session.closed
    # What was buffered before the overflow was already sent: nothing new, then the end.
    assert await session.next_batch(1.0) == []
    assert await session.next_batch(1.0) is None


def test_the_buffer_is_bounded_by_bytes_not_only_by_count() -> None:
    # 30 events of 1 MB in a buffer of 1000 events but 4 MB: about 4 are kept, not 30.
    buffer = ReplayBuffer(1000, max_bytes=4 << 20)
    events = [event(i, "x" * (1 << 20)) for i in range(30)]
    for e in events:
        buffer.record(e)
    assert buffer.size <= 4 << 20
    assert 1 <= len(buffer) <= 4
    after, lost = buffer.since(events[0].id)
    assert lost  # the resume point fell out of the buffer: the client is told
    assert [json.loads(f.payload)["id"] for f in after] == [e.id for e in events[-len(buffer) :]]


def test_an_event_larger_than_the_buffer_is_kept_as_a_notice() -> None:
    buffer = ReplayBuffer(10, max_bytes=2048)
    small, huge, after = event(0), event(1, "y" * 10_000), event(2)
    for e in (small, huge, after):
        buffer.record(e)
    frames, lost = buffer.since(small.id)
    assert not lost and buffer.size <= 2048
    notice = json.loads(frames[0].payload)
    assert frames[0].notice and notice["notice"] == "too_large" and notice["id"] == huge.id
    assert datas(frames[1:]) == [2]


def test_an_unencodable_event_becomes_a_notice_with_its_id() -> None:
    buffer = ReplayBuffer(10)
    good, bad = event(0), event(1, {"obj": object()})
    buffer.record(good)
    buffer.record(bad)
    frames, lost = buffer.since(good.id)
    assert not lost and frames[0].id == bad.id and frames[0].notice
    assert json.loads(frames[0].payload)["notice"] == "unencodable"
    assert buffer.since(bad.id) == ([], False)
