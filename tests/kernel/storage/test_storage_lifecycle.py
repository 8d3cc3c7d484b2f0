"""Opening, migrating, closing, and choosing a backend."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from orrery.kernel.storage import (  # noqa: TID251 - the ban is meant for orrery.sdk
    MigrationError,
    PostgresStorage,
    SQLiteStorage,
    Storage,
    StorageClosed,
    StorageError,
    StorageUnavailable,
    StoreError,
    create_storage,
    open_storage,
)
from orrery.kernel.storage._migrations import (  # noqa: TID251 - the ban is meant for orrery.sdk
    POSTGRES_MIGRATIONS,
    SQLITE_MIGRATIONS,
)

MakeStorage = Callable[..., Awaitable[Storage]]


async def applied_migrations(storage: Storage) -> list[int]:
    if isinstance(storage, SQLiteStorage):
        with sqlite3.connect(storage.path) as conn:
            rows = conn.execute("SELECT version FROM orrery_migrations ORDER BY version")
            return [v for (v,) in rows]
    assert isinstance(storage, PostgresStorage)
    pg = await asyncpg.connect(storage.dsn)
    try:
        records = await pg.fetch(
            f'SELECT version FROM "{storage.schema}".orrery_migrations ORDER BY version'
        )
    finally:
        await pg.close()
    return [v for (v,) in records]


async def test_open_migrates_and_reopening_is_idempotent(make_storage: MakeStorage) -> None:
    first = await make_storage()
    latest = {"sqlite": SQLITE_MIGRATIONS, "postgres": POSTGRES_MIGRATIONS}[first.backend]
    assert await first.schema_version() == latest[-1].version
    await first.store("p").put("k", 1)
    await first.open()  # opening an open storage does nothing
    await first.close()
    await first.close()  # closing twice is fine
    second = await make_storage()
    third = await make_storage()
    assert await applied_migrations(third) == [m.version for m in latest]
    assert await second.store("p").get("k") == 1


async def test_concurrent_opens_migrate_once(make_storage: MakeStorage) -> None:
    storages = await asyncio.gather(*(make_storage() for _ in range(4)))
    expected = [
        m.version
        for m in {"sqlite": SQLITE_MIGRATIONS}.get(storages[0].backend, POSTGRES_MIGRATIONS)
    ]
    assert await applied_migrations(storages[0]) == expected
    for storage in storages:
        await storage.journal("p").append("s", [{"type": "t"}])
    assert await storages[0].journal("p").version("s") == 4


async def test_a_newer_schema_is_refused(make_storage: MakeStorage) -> None:
    storage = await make_storage()
    if isinstance(storage, SQLiteStorage):
        with sqlite3.connect(storage.path) as conn:
            conn.execute(
                "INSERT INTO orrery_migrations (version, name, applied_ns) VALUES (999, 'x', 0)"
            )
    else:
        assert isinstance(storage, PostgresStorage)
        assert storage._pool is not None
        await storage._pool.execute(
            "INSERT INTO orrery_migrations (version, name) VALUES (999, 'from the future')"
        )
    with pytest.raises(MigrationError, match="999") as info:
        await make_storage()
    assert info.value.version == 999
    assert "upgrade Orrery" in str(info.value)


async def test_using_a_closed_storage_says_so(make_storage: MakeStorage) -> None:
    storage = await make_storage(open=False)
    with pytest.raises(StorageClosed, match="open"):
        await storage.store("p").get("k")
    await storage.open()
    await storage.store("p").put("k", 1)
    await storage.close()
    with pytest.raises(StorageClosed) as info:
        await storage.journal("p").append("s", [{"type": "t"}])
    assert info.value.storage is storage
    assert isinstance(info.value, StoreError)


async def test_async_with_opens_and_closes(make_storage: MakeStorage) -> None:
    storage = await make_storage(open=False)
    async with storage as opened:
        assert opened is storage and storage.is_open
        await storage.store("p").put("k", "v")
    assert not storage.is_open


# -- backend choice (no fixture parameters: these do not need both backends) ----------


def test_create_storage_defaults_to_sqlite_under_the_state_dir(tmp_path: Path) -> None:
    storage = create_storage(state_dir=tmp_path)
    assert isinstance(storage, SQLiteStorage)
    assert storage.path == tmp_path / "orrery.db"
    explicit = create_storage("sqlite", path=tmp_path / "x.db")
    assert isinstance(explicit, SQLiteStorage) and explicit.path == tmp_path / "x.db"
    default = create_storage()
    assert isinstance(default, SQLiteStorage) and default.path == Path(".orrery/orrery.db")


def test_create_storage_postgres_needs_a_dsn() -> None:
    with pytest.raises(StorageError, match="needs a DSN"):
        create_storage("postgres")
    storage = create_storage("postgresql", dsn="postgresql://u:secret@db.example:6543/x")
    assert isinstance(storage, PostgresStorage)
    assert storage.address == "u@db.example:6543/x"
    assert "secret" not in repr(storage)


def test_unknown_backend_is_named() -> None:
    with pytest.raises(StorageError, match="'mongodb'.*sqlite.*postgres"):
        create_storage("mongodb")


async def test_open_storage_creates_the_state_dir(tmp_path: Path) -> None:
    storage = await open_storage("sqlite", state_dir=tmp_path / "new" / "state")
    try:
        await storage.store("p").put("k", 1)
        assert (tmp_path / "new" / "state" / "orrery.db").exists()
    finally:
        await storage.close()


async def test_unwritable_sqlite_path_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StorageUnavailable) as info:
        await open_storage("sqlite", path=tmp_path / "a-file" / "orrery.db")
    assert "a-file" in str(info.value) and "writable" in str(info.value)
    assert info.value.backend == "sqlite"


async def test_unreachable_postgres_names_the_address_and_what_to_check() -> None:
    dsn = "postgresql://orrery:hunter2@127.0.0.1:1/orrery"
    with pytest.raises(StorageUnavailable) as info:
        await open_storage("postgres", dsn=dsn)
    message = str(info.value)
    assert "127.0.0.1:1" in message
    assert "Is PostgreSQL running" in message and "pg_isready" in message
    assert "hunter2" not in message
    assert info.value.address == "orrery@127.0.0.1:1/orrery"
    assert isinstance(info.value, StoreError)


async def test_missing_postgres_database_is_explained(pg_session: Any) -> None:
    base = pg_session.dsn.rsplit("/", 1)[0]
    missing = f"orrery_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(StorageUnavailable, match="does not exist.*createdb"):
        await open_storage("postgres", dsn=f"{base}/{missing}")


async def test_malformed_dsn_is_explained() -> None:
    with pytest.raises(StorageUnavailable, match="malformed|Check the DSN"):
        await open_storage("postgres", dsn="postgresql://host:notaport/db")
