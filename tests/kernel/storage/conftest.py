"""Fixtures that run every storage test against SQLite and a real PostgreSQL server.

PostgreSQL tests get their own schema (under a prefix unique to the test session),
dropped after each test and, as a safety net, at the end of the session. When the server
is unreachable they are skipped, except with CI=true where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from orrery.kernel.storage import (  # noqa: TID251 - the ban is meant for orrery.sdk
    PostgresStorage,
    SQLiteStorage,
    Storage,
)

PG_DSN = os.environ.get("ORRERY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")

MakeStorage = Callable[..., Awaitable[Storage]]


@dataclass
class PgSession:
    """The test session's PostgreSQL server and the schemas it handed out."""

    dsn: str
    prefix: str
    count: int = field(default=0)

    def new_schema(self) -> str:
        self.count += 1
        return f"{self.prefix}_{self.count}"


async def _ping(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    await conn.close()


async def drop_schemas(dsn: str, prefix: str) -> None:
    """Drop every schema whose name starts with ``prefix``."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        names = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE left(nspname, length($1)) = $1", prefix
        )
        for (name,) in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


def _run_on_own_loop(coro: Coroutine[Any, Any, None]) -> None:
    # The session fixture may first be requested from inside a running test loop, where
    # asyncio.run() is refused; a short-lived thread gets a loop of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_session() -> Iterator[PgSession]:
    try:
        _run_on_own_loop(_ping(PG_DSN))
    except Exception as e:
        reason = (
            f"PostgreSQL is not reachable at {PG_DSN} ({type(e).__name__}: {e}); start it "
            f"(pg_ctlcluster <version> main start) or point ORRERY_TEST_PG_DSN at a server"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    session = PgSession(PG_DSN, f"orrery_test_{uuid.uuid4().hex[:10]}")
    yield session
    _run_on_own_loop(drop_schemas(PG_DSN, session.prefix))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test; ``-k postgres`` or ``-k sqlite`` selects one."""
    return str(request.param)


@pytest.fixture
async def make_storage(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[MakeStorage]:
    """Makes storages on one database (one file, or one schema), closed after the test.

    Each call is a separate connection (or pool), as a second process would have.
    """
    created: list[Storage] = []
    schema = ""
    pg: PgSession | None = None
    if backend == "postgres":
        pg = request.getfixturevalue("pg_session")
        schema = pg.new_schema()

    async def make(*, open: bool = True) -> Storage:
        storage: Storage
        if pg is not None:
            storage = PostgresStorage(pg.dsn, schema=schema)
        else:
            storage = SQLiteStorage(tmp_path / "orrery.db")
        created.append(storage)
        if open:
            await storage.open()
        return storage

    yield make
    for storage in reversed(created):
        await storage.close()
    if pg is not None:
        conn = await asyncpg.connect(pg.dsn, timeout=5)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture
async def storage(make_storage: MakeStorage) -> Storage:
    """An open storage on a fresh database."""
    return await make_storage()
