"""The event journal (orrery.sdk.Journal): streams, versions, replay, snapshots."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orrery.kernel.storage import (  # noqa: TID251 - the ban is meant for orrery.sdk
    EventJournal,
    InvalidArgument,
    InvalidJournalEvent,
    InvalidName,
    Storage,
    StoredEvent,
    UnencodableValue,
    WrongExpectedVersion,
)
from orrery.sdk import Event, Journal, JournalEvent, new_event_id


def ev(n: Any, type: str = "thing.happened") -> dict[str, Any]:
    return {"type": type, "data": n}


async def read(journal: EventJournal, stream: str, from_version: int = 0) -> list[StoredEvent]:
    return [e async for e in journal.read(stream, from_version)]


async def read_all(journal: EventJournal, **kwargs: Any) -> list[StoredEvent]:
    return [e async for e in journal.read_all(**kwargs)]


async def test_journal_satisfies_sdk_protocols(storage: Storage) -> None:
    journal = storage.journal("p")
    assert isinstance(journal, Journal)
    await journal.append("s", [ev(1)])
    (event,) = await read(journal, "s")
    assert isinstance(event, JournalEvent)


async def test_versions_start_at_one_and_count_up(storage: Storage) -> None:
    journal = storage.journal("p")
    assert await journal.version("s") == 0
    assert await journal.append("s", [ev(1)]) == 1
    assert await journal.append("s", [ev(2), ev(3)]) == 3
    assert await journal.version("s") == 3
    events = await read(journal, "s")
    assert [(e.stream, e.version, e.type, e.data) for e in events] == [
        ("s", 1, "thing.happened", 1),
        ("s", 2, "thing.happened", 2),
        ("s", 3, "thing.happened", 3),
    ]
    assert all(e.id for e in events)
    positions = [e.position for e in events]
    assert positions == sorted(set(positions))


async def test_read_from_version_is_inclusive(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", [ev(i) for i in range(1, 6)])
    assert [e.version for e in await read(journal, "s", 0)] == [1, 2, 3, 4, 5]
    assert [e.version for e in await read(journal, "s", 1)] == [1, 2, 3, 4, 5]
    assert [e.version for e in await read(journal, "s", 4)] == [4, 5]
    assert await read(journal, "s", 6) == []
    assert await read(journal, "missing") == []


async def test_expected_version_zero_means_new_stream(storage: Storage) -> None:
    journal = storage.journal("p")
    assert await journal.append("s", [ev(1)], expected_version=0) == 1
    with pytest.raises(WrongExpectedVersion) as info:
        await journal.append("s", [ev(2)], expected_version=0)
    assert (info.value.stream, info.value.expected, info.value.actual) == ("s", 0, 1)
    assert await journal.append("s", [ev(2)], expected_version=1) == 2


async def test_wrong_expected_version_writes_nothing(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", [ev(1), ev(2)])
    for expected in (0, 1, 3, 99):
        with pytest.raises(WrongExpectedVersion) as info:
            await journal.append("s", [ev("x"), ev("y")], expected_version=expected)
        assert info.value.actual == 2
        assert info.value.expected == expected
    assert [e.data for e in await read(journal, "s")] == [1, 2]


async def test_empty_append_checks_and_returns_version(storage: Storage) -> None:
    journal = storage.journal("p")
    assert await journal.append("s", []) == 0
    await journal.append("s", [ev(1)])
    assert await journal.append("s", [], expected_version=1) == 1
    with pytest.raises(WrongExpectedVersion):
        await journal.append("s", [], expected_version=0)
    assert await journal.version("s") == 1


async def test_batch_is_atomic_when_one_event_is_bad(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", [ev(1)])
    with pytest.raises(UnencodableValue) as info:
        await journal.append("s", [ev(2), ev(object()), ev(4)])
    assert "'s'" in str(info.value) and "#1" in str(info.value)
    with pytest.raises(InvalidJournalEvent):
        await journal.append("s", [ev(2), {"data": 3}])
    assert [e.data for e in await read(journal, "s")] == [1]


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ({"type": "t"}, "sequence"),
        ("abc", "sequence"),
        ([{"type": "t", "payload": 1}], "unknown keys"),
        ([{"data": 1}], "no 'type'"),
        ([{"type": ""}], "non-empty"),
        ([{"type": 5}], "non-empty"),
        ([42], "not an Event or dict"),
        ([{"type": "t", "subject": 5}], "'subject'"),
        ([{"type": "t", "headers": {"a": 1}}], "'headers'"),
    ],
)
async def test_invalid_events_are_rejected(storage: Storage, events: Any, reason: str) -> None:
    journal = storage.journal("p")
    with pytest.raises(InvalidJournalEvent) as info:
        await journal.append("s", events)
    assert reason in str(info.value)
    assert await journal.version("s") == 0


@pytest.mark.parametrize("stream", ["", "nul\x00", 3])
async def test_invalid_stream_names_are_rejected(storage: Storage, stream: Any) -> None:
    with pytest.raises(InvalidName):
        await storage.journal("p").append(stream, [ev(1)])


async def test_bad_expected_version_is_rejected(storage: Storage) -> None:
    journal = storage.journal("p")
    bad_versions: list[Any] = [-1, True, 1.0, "1"]
    for bad in bad_versions:
        with pytest.raises(InvalidArgument, match="expected_version"):
            await journal.append("s", [ev(1)], expected_version=bad)


async def test_sdk_event_keeps_its_cloudevents_attributes(storage: Storage) -> None:
    journal = storage.journal("p")
    original = Event(
        id=new_event_id(),
        type="order.created",
        source="orrery://node-1/shop",
        time_ns=1_700_000_000_123_456_789,
        subject="order-7",
        data={"total": 12.5, "items": ["a"]},
        correlationid="corr-1",
        causationid="cause-1",
        headers={"tenant": "acme"},
    )
    before = time.time_ns()
    await journal.append("orders", [original])
    (stored,) = await read(journal, "orders")
    assert stored.to_event() == original
    assert (stored.id, stored.type, stored.data) == (original.id, "order.created", original.data)
    assert stored.event_time_ns == original.time_ns
    assert stored.time_ns >= before  # the append time, not the event's own


async def test_dict_events_take_optional_attributes(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append(
        "s",
        [
            {"type": "a", "data": 1, "id": "my-id", "subject": "k", "headers": {"x": "y"}},
            {"type": "b"},
        ],
    )
    first, second = await read(journal, "s")
    assert (first.id, first.subject, first.headers) == ("my-id", "k", {"x": "y"})
    assert second.data is None and second.id and second.id != first.id
    assert second.to_event().source == "orrery://local/journal"


async def test_stored_events_can_be_copied_to_another_stream(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", [ev(1), ev(2)])
    originals = await read(journal, "s")
    await journal.append("copy", originals)
    copies = await read(journal, "copy")
    assert [(c.id, c.data) for c in copies] == [(o.id, o.data) for o in originals]


async def test_namespaces_have_separate_streams(storage: Storage) -> None:
    a, b, kernel = storage.journal("a"), storage.journal("b"), storage.journal()
    assert kernel.namespace == ""
    await a.append("s", [ev("a")])
    await b.append("s", [ev("b1"), ev("b2")])
    assert [e.data for e in await read(a, "s")] == ["a"]
    assert await b.version("s") == 2 and await kernel.version("s") == 0
    assert [e.data for e in await read_all(a)] == ["a"]


async def test_read_all_is_in_append_order_across_streams(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("x", [ev("x1")])
    await journal.append("y", [ev("y1"), ev("y2")])
    await journal.append("x", [ev("x2")])
    events = await read_all(journal)
    assert [(e.stream, e.data) for e in events] == [
        ("x", "x1"),
        ("y", "y1"),
        ("y", "y2"),
        ("x", "x2"),
    ]
    assert [e.position for e in events] == sorted({e.position for e in events})
    rest = await read_all(journal, from_position=events[2].position)
    assert [e.data for e in rest] == ["y2", "x2"]


async def test_read_all_until_time_replays_the_past(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("acct", [ev(10)])
    await journal.append("acct", [ev(5), ev(-3)])
    batch_time = (await read(journal, "acct"))[-1].time_ns
    await journal.append("acct", [ev(100)])
    times = [e.time_ns for e in await read_all(journal)]
    assert times == sorted(times) and times[1] == times[2]  # a batch shares its time

    async def balance(until: int | None) -> int:
        return sum(e.data for e in await read_all(journal, until_time_ns=until))

    assert await balance(None) == 112
    assert await balance(batch_time) == 12
    assert await balance(batch_time - 1) == 10
    assert await balance(0) == 0


async def test_reads_page_through_long_streams(storage: Storage) -> None:
    journal = storage.journal("p")
    for start in range(0, 1200, 300):
        await journal.append("long", [ev(i) for i in range(start, start + 300)])
    assert [e.data for e in await read(journal, "long")] == list(range(1200))
    assert [e.version for e in await read(journal, "long", 1001)] == list(range(1001, 1201))
    assert len(await read_all(journal)) == 1200


async def test_snapshots(storage: Storage) -> None:
    journal = storage.journal("p")
    assert await journal.load_snapshot("s") is None
    await journal.append("s", [ev(i) for i in range(1, 11)])
    await journal.save_snapshot("s", 4, {"sum": 10})
    await journal.save_snapshot("s", 8, {"sum": 36})
    assert await journal.load_snapshot("s") == (8, {"sum": 36})
    assert await journal.load_snapshot("s", max_version=7) == (4, {"sum": 10})
    assert await journal.load_snapshot("s", max_version=3) is None
    await journal.save_snapshot("s", 8, {"sum": 36, "fixed": True})
    assert await journal.load_snapshot("s") == (8, {"sum": 36, "fixed": True})
    snapshot = await journal.load_snapshot("s")
    assert snapshot is not None
    version, state = snapshot
    rest = await read(journal, "s", version + 1)
    assert state["sum"] + sum(e.data for e in rest) == 55
    assert await storage.journal("other").load_snapshot("s") is None


async def test_snapshot_beyond_the_stream_is_refused(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", [ev(1)])
    with pytest.raises(InvalidArgument, match="only at version 1"):
        await journal.save_snapshot("s", 2, {})
    with pytest.raises(UnencodableValue, match="snapshot"):
        await journal.save_snapshot("s", 1, {"x": object()})


_batches = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.integers(-100, 100), max_size=4),
        st.sampled_from(["none", "right", "wrong"]),
    ),
    max_size=15,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=_batches, start=st.integers(0, 6))
async def test_journal_matches_a_model(
    storage: Storage, batches: list[tuple[str, list[int], str]], start: int
) -> None:
    journal = storage.journal(f"h{uuid.uuid4().hex}")
    model: dict[str, list[int]] = {}
    order: list[tuple[str, int]] = []
    for stream, data, mode in batches:
        current = len(model.get(stream, []))
        expected = {"none": None, "right": current, "wrong": current + 1}[mode]
        if mode == "wrong":
            with pytest.raises(WrongExpectedVersion):
                await journal.append(stream, [ev(d) for d in data], expected)
            continue
        version = await journal.append(stream, [ev(d) for d in data], expected)
        model.setdefault(stream, []).extend(data)
        order.extend((stream, d) for d in data)
        assert version == len(model[stream])
    for stream, data in model.items():
        events = await read(journal, stream, start)
        assert [e.data for e in events] == data[max(start, 1) - 1 :]
        assert [e.version for e in events] == list(range(max(start, 1), len(data) + 1))
    assert [(e.stream, e.data) for e in await read_all(journal)] == order


async def test_truncate_deletes_old_events_but_keeps_the_version(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", [ev(n) for n in range(1, 11)])
    await journal.append("other", [ev("x")])
    assert await journal.truncate("s", 8) == 7
    assert [e.version for e in await read(journal, "s")] == [8, 9, 10]
    assert [e.version for e in await read(journal, "s", 2)] == [8, 9, 10]
    assert [(e.stream, e.version) for e in await read_all(journal)] == [
        ("s", 8), ("s", 9), ("s", 10), ("other", 1)
    ]
    # Cutting past the end keeps the latest event: appends go on with the same check.
    assert await journal.truncate("s", 100) == 2
    assert [e.version for e in await read(journal, "s")] == [10]
    assert await journal.version("s") == 10
    assert await journal.append("s", [ev(11)], expected_version=10) == 11
    with pytest.raises(WrongExpectedVersion):
        await journal.append("s", [ev(12)], expected_version=0)
    assert [e.version for e in await read(journal, "other")] == [1]
    assert await journal.truncate("missing", 5) == 0


async def test_truncate_keeps_the_newest_snapshot_below_the_cut(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", [ev(n) for n in range(1, 10)])
    for version in (2, 4, 6, 8):
        await journal.save_snapshot("s", version, {"at": version})
    await journal.truncate("s", 7)  # 6 is what a reader restarts from, then 7, 8, 9
    assert await journal.load_snapshot("s", max_version=5) is None
    assert await journal.load_snapshot("s", max_version=7) == (6, {"at": 6})
    assert await journal.load_snapshot("s") == (8, {"at": 8})
    assert [e.version for e in await read(journal, "s", 7)] == [7, 8, 9]


async def test_truncate_rejects_a_bad_version(storage: Storage) -> None:
    with pytest.raises(InvalidArgument, match="before_version"):
        await storage.journal("p").truncate("s", -1)
