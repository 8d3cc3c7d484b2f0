"""Journal subscriptions: catch up, follow live appends, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from orrery.kernel.storage import (  # noqa: TID251 - the ban is meant for orrery.sdk
    PostgresStorage,
    Storage,
    StorageClosed,
)
from orrery.sdk import JournalEvent, Subscription

#: Only a guard against a hung test; every wait below ends on an event, not on time.
GUARD = 10.0


def events(*data: object) -> list[dict[str, object]]:
    return [{"type": "t", "data": d} for d in data]


class Collector:
    """A handler that records what it gets and lets a test await a count."""

    def __init__(self) -> None:
        self.got: list[JournalEvent] = []
        self._count = asyncio.Condition()

    async def __call__(self, event: JournalEvent) -> None:
        async with self._count:
            self.got.append(event)
            self._count.notify_all()

    async def wait_for(self, count: int) -> None:
        async with self._count:
            await asyncio.wait_for(self._count.wait_for(lambda: len(self.got) >= count), GUARD)

    @property
    def data(self) -> list[object]:
        return [e.data for e in self.got]


async def test_catches_up_then_follows_live_appends(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", events(1, 2, 3))
    collector = Collector()
    sub = journal.subscribe("s", collector)
    assert isinstance(sub, Subscription)
    assert (sub.pattern, sub.group, sub.durable, sub.active) == ("s", None, None, True)
    await collector.wait_for(3)
    await journal.append("s", events(4))
    await journal.append("other", events("not mine"))
    await journal.append("s", events(5, 6))
    await collector.wait_for(6)
    assert collector.data == [1, 2, 3, 4, 5, 6]
    assert [e.version for e in collector.got] == [1, 2, 3, 4, 5, 6]


async def test_from_version_is_inclusive(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", events(1, 2, 3, 4))
    collector = Collector()
    sub = journal.subscribe("s", collector, from_version=3)
    await sub.drain()
    assert collector.data == [3, 4]


async def test_subscribing_before_the_stream_exists(storage: Storage) -> None:
    journal = storage.journal("p")
    collector = Collector()
    journal.subscribe("later", collector)
    await journal.append("later", events("first"))
    await collector.wait_for(1)
    assert collector.data == ["first"]


async def test_sync_handler_and_drain(storage: Storage) -> None:
    journal = storage.journal("p")
    got: list[int] = []
    sub = journal.subscribe("s", lambda e: got.append(e.version))
    for n in range(5):
        await journal.append("s", events(n))
    await sub.drain()
    assert got == [1, 2, 3, 4, 5]
    assert not sub.active


async def test_every_event_once_in_order_while_appends_race_catch_up(storage: Storage) -> None:
    journal = storage.journal("p")
    await journal.append("s", events(*range(0, 700)))  # more than one read page
    collector = Collector()
    sub = journal.subscribe("s", collector)
    for start in range(700, 1000, 20):
        await journal.append("s", events(*range(start, start + 20)))
    await sub.drain()
    assert collector.data == list(range(1000))


async def test_a_failing_handler_is_logged_and_skipped(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    journal = storage.journal("p")
    seen: list[int] = []

    def handler(event: JournalEvent) -> None:
        seen.append(event.version)
        if event.version == 2:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="orrery.kernel.storage"):
        sub = journal.subscribe("s", handler)
        await journal.append("s", events(1, 2, 3))
        await sub.drain()
    assert seen == [1, 2, 3]
    assert "version 2" in caplog.text and "boom" in caplog.text


async def test_unsubscribe_stops_delivery(storage: Storage) -> None:
    journal = storage.journal("p")
    first, witness = Collector(), Collector()
    sub = journal.subscribe("s", first)
    await journal.append("s", events(1))
    await first.wait_for(1)
    sub.unsubscribe()
    assert not sub.active
    later = journal.subscribe("s", witness)
    await journal.append("s", events(2))
    await later.drain()
    assert witness.data == [1, 2]
    assert first.data == [1]


def _subscription_tasks() -> list[asyncio.Task[object]]:
    return [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith("journal-subscription:") and not t.done()
    ]


async def test_close_cancels_every_subscription(
    make_storage: Callable[[], Awaitable[Storage]],
) -> None:
    storage = await make_storage()
    journal = storage.journal("p")
    subs = [journal.subscribe(f"s{i}", Collector()) for i in range(3)]
    assert len(_subscription_tasks()) == 3
    await storage.close()
    assert _subscription_tasks() == []
    assert not any(sub.active for sub in subs)
    with pytest.raises(StorageClosed):
        journal.subscribe("s", Collector())


# -- PostgreSQL: several daemons share one database ----------------------------------


@pytest.fixture
async def two_postgres_daemons(pg_session: Any) -> AsyncIterator[tuple[Storage, Storage]]:
    """Two storages on one fresh schema, each with its own pool, as two daemons have."""
    schema = pg_session.new_schema()
    daemons = (
        PostgresStorage(pg_session.dsn, schema=schema),
        PostgresStorage(pg_session.dsn, schema=schema),
    )
    try:
        for daemon in daemons:
            await daemon.open()
        yield daemons
    finally:
        for daemon in reversed(daemons):
            await daemon.close()
        conn = await asyncpg.connect(pg_session.dsn)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def test_postgres_appends_by_another_daemon_reach_subscribers(
    two_postgres_daemons: tuple[Storage, Storage],
) -> None:
    here, there = two_postgres_daemons
    collector = Collector()
    here.journal("p").subscribe("s", collector)
    await there.journal("p").append("s", events(1))
    await there.journal("p").append("s", events(2, 3))
    await collector.wait_for(3)
    assert collector.data == [1, 2, 3]


async def test_postgres_subscribers_recover_after_losing_the_listen_connection(
    two_postgres_daemons: tuple[Storage, Storage], caplog: pytest.LogCaptureFixture
) -> None:
    here, there = two_postgres_daemons
    assert isinstance(here, PostgresStorage) and here._listener is not None
    listener = here._listener._conn
    assert listener is not None
    collector = Collector()
    here.journal("p").subscribe("s", collector)
    await there.journal("p").append("s", events(1))
    await collector.wait_for(1)
    pid = listener.get_server_pid()
    killer = await asyncpg.connect(here.dsn)
    try:
        # With a timeout, pg_terminate_backend returns once the backend has exited, so
        # the append below cannot be announced on the old connection.
        assert await killer.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
    finally:
        await killer.close()
    # Appended while the listener is down or reconnecting: delivered once it is back.
    await there.journal("p").append("s", events(2))
    await collector.wait_for(2)
    assert collector.data == [1, 2]
    assert "lost the LISTEN connection" in caplog.text
