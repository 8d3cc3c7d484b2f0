"""Concurrent writers: optimistic concurrency holds, and streams get no duplicate or gap.

Each storage made by ``make_storage`` has its own connection (or pool), like a second
process. PostgreSQL races are real across pools; SQLite statements of one process never
interleave, so the SQLite-only tests race separate threads, each with its own loop and
connection, on one file.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orrery.kernel.storage import (  # noqa: TID251 - the ban is meant for orrery.sdk
    EventJournal,
    SQLiteStorage,
    Storage,
    WrongExpectedVersion,
)

MakeStorage = Callable[..., Awaitable[Storage]]


async def append_with_retry(journal: EventJournal, stream: str, data: Any) -> int:
    """Optimistic append: read the version, append expecting it, retry when beaten."""
    while True:
        version = await journal.version(stream)
        try:
            return await journal.append(stream, [{"type": "t", "data": data}], version)
        except WrongExpectedVersion:
            continue


async def assert_contiguous(journal: EventJournal, stream: str, data: list[Any]) -> None:
    events = [e async for e in journal.read(stream)]
    assert [e.version for e in events] == list(range(1, len(data) + 1))
    assert sorted(e.data for e in events) == sorted(data)
    positions = [e.position for e in events]
    assert positions == sorted(set(positions))


async def test_two_appenders_expecting_a_new_stream_exactly_one_wins(
    make_storage: MakeStorage,
) -> None:
    a, b = (await make_storage()).journal("p"), (await make_storage()).journal("p")
    for i in range(20):
        results = await asyncio.gather(
            a.append(f"s{i}", [{"type": "t", "data": "a"}], expected_version=0),
            b.append(f"s{i}", [{"type": "t", "data": "b"}], expected_version=0),
            return_exceptions=True,
        )
        assert [r for r in results if not isinstance(r, BaseException)] == [1], results
        (error,) = [r for r in results if isinstance(r, BaseException)]
        assert isinstance(error, WrongExpectedVersion)
        assert (error.expected, error.actual) == (0, 1)
        assert [e.version async for e in a.read(f"s{i}")] == [1]


async def test_racing_writers_leave_no_duplicate_or_gap(make_storage: MakeStorage) -> None:
    journals = [(await make_storage()).journal("p") for _ in range(4)]

    async def writer(w: int, journal: EventJournal) -> None:
        for i in range(15):
            if i % 3 == 0:
                await journal.append("shared", [{"type": "t", "data": f"{w}-{i}"}])
            else:
                await append_with_retry(journal, "shared", f"{w}-{i}")

    await asyncio.gather(*(writer(w, j) for w, j in enumerate(journals)))
    expected = [f"{w}-{i}" for w in range(4) for i in range(15)]
    await assert_contiguous(journals[0], "shared", expected)


async def test_concurrent_batches_stay_whole_in_read_all(make_storage: MakeStorage) -> None:
    journals = [(await make_storage()).journal("p") for _ in range(3)]

    async def writer(w: int, journal: EventJournal) -> None:
        for i in range(10):
            await journal.append(f"w{w}", [{"type": "t", "data": [w, i, n]} for n in range(5)])

    await asyncio.gather(*(writer(w, j) for w, j in enumerate(journals)))
    events = [e async for e in journals[0].read_all()]
    assert len(events) == 150
    positions = [e.position for e in events]
    assert positions == sorted(set(positions))
    # Batches never interleave: every run of five belongs to one append.
    for start in range(0, 150, 5):
        chunk = [e.data for e in events[start : start + 5]]
        assert [d[2] for d in chunk] == [0, 1, 2, 3, 4]
        assert len({(d[0], d[1]) for d in chunk}) == 1


def _in_threads(count: int, work: Any) -> list[Any]:
    """Run ``work(index, barrier)`` on its own event loop in each of ``count`` threads."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            results[index] = asyncio.run(work(index, barrier))
        except BaseException as e:  # reported to the test below
            results[index] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


async def test_sqlite_threads_expecting_a_new_stream_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    async with SQLiteStorage(path):
        pass  # migrate once up front, so the race is only about the append

    async def work(index: int, barrier: threading.Barrier) -> list[Any]:
        outcomes: list[Any] = []
        async with SQLiteStorage(path) as storage:
            journal = storage.journal("p")
            for i in range(20):
                barrier.wait()
                try:
                    outcomes.append(await journal.append(f"s{i}", [{"type": "t"}], 0))
                except WrongExpectedVersion as e:
                    outcomes.append(e)
        return outcomes

    first, second = await asyncio.to_thread(_in_threads, 2, work)
    for a, b in zip(first, second, strict=True):
        assert [r for r in (a, b) if isinstance(r, WrongExpectedVersion)] != []
        assert [r for r in (a, b) if not isinstance(r, WrongExpectedVersion)] == [1]


async def test_sqlite_threads_leave_no_duplicate_or_gap(tmp_path: Path) -> None:
    path = tmp_path / "race.db"

    async def work(index: int, barrier: threading.Barrier) -> None:
        barrier.wait()  # open concurrently too: migrations must serialise
        async with SQLiteStorage(path) as storage:
            journal = storage.journal("p")
            for i in range(40):
                if i % 2:
                    await journal.append("shared", [{"type": "t", "data": f"{index}-{i}"}])
                else:
                    await append_with_retry(journal, "shared", f"{index}-{i}")

    results = await asyncio.to_thread(_in_threads, 4, work)
    assert results == [None] * 4
    async with SQLiteStorage(path) as storage:
        expected = [f"{w}-{i}" for w in range(4) for i in range(40)]
        await assert_contiguous(storage.journal("p"), "shared", expected)
        assert await storage.schema_version() == 1


async def test_store_writers_do_not_lose_keys(make_storage: MakeStorage) -> None:
    storages: list[Storage] = [await make_storage() for _ in range(3)]

    async def writer(w: int, storage: Storage) -> None:
        store = storage.store("p")
        for i in range(20):
            await store.put(f"{w}/{i:02d}", i)

    await asyncio.gather(*(writer(w, s) for w, s in enumerate(storages)))
    keys = [k async for k, _ in storages[0].store("p").scan()]
    assert keys == sorted(f"{w}/{i:02d}" for w in range(3) for i in range(20))
