"""The PostgreSQL backend: an asyncpg connection pool, one schema per installation."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from orrery.sdk.errors import WrongExpectedVersion

from ._events import EventRow, RawEvent
from ._migrations import (
    POSTGRES_MIGRATE_LOCK,
    POSTGRES_MIGRATIONS,
    POSTGRES_MIGRATIONS_TABLE,
    pending_migrations,
)
from ._pgconnect import connect_error, describe_dsn, quote_ident
from ._pglisten import JournalListener
from ._storage import Storage
from .errors import InvalidArgument, StorageClosed, StorageError

__all__ = ["PostgresStorage"]

_EVENT_COLUMNS = "stream, version, position, type, data, meta, time_ns"
_SQL_APPEND = "SELECT o_appended, o_version FROM orrery_append($1, $2, $3, $4, $5, $6, $7)"
_SQL_HEAD = (
    "SELECT coalesce(max(version), 0) FROM orrery_events WHERE namespace = $1 AND stream = $2"
)
# Retention: never the latest event (it carries the stream's version), and never the
# newest snapshot below the cut (a reader restarts from it).
_SQL_TRUNCATE_EVENTS = (
    "DELETE FROM orrery_events WHERE namespace = $1 AND stream = $2 AND version < $3 "
    "AND version < (SELECT max(version) FROM orrery_events WHERE namespace = $1 AND stream = $2)"
)
_SQL_TRUNCATE_SNAPSHOTS = (
    "DELETE FROM orrery_snapshots WHERE namespace = $1 AND stream = $2 AND version < ("
    "SELECT max(version) FROM orrery_snapshots "
    "WHERE namespace = $1 AND stream = $2 AND version < $3)"
)
_SQL_READ_STREAM = (
    f"SELECT {_EVENT_COLUMNS} FROM orrery_events "
    "WHERE namespace = $1 AND stream = $2 AND version >= $3 ORDER BY version LIMIT $4"
)
_SQL_READ_ALL = (
    f"SELECT {_EVENT_COLUMNS} FROM orrery_events "
    "WHERE namespace = $1 AND position >= $2 ORDER BY position LIMIT $3"
)
_SQL_READ_ALL_UNTIL = (
    f"SELECT {_EVENT_COLUMNS} FROM orrery_events "
    "WHERE namespace = $1 AND position >= $2 AND time_ns <= $3 ORDER BY position LIMIT $4"
)
_SQL_KV_PAGE = {
    (inclusive, bounded): "SELECT key, value FROM orrery_kv WHERE namespace = $1 "
    f"AND key {'>=' if inclusive else '>'} $2{' AND key < $3' if bounded else ''} "
    f"ORDER BY key LIMIT {'$4' if bounded else '$3'}"
    for inclusive in (True, False)
    for bounded in (True, False)
}
#: Appends without expected_version retry this often after losing a race to a writer
#: that bypassed orrery_append's lock (the unique constraint caught it).
_APPEND_RETRIES = 3
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class PostgresStorage(Storage):
    """Storage in a PostgreSQL schema, shared by every kernel daemon pointed at it.

    ``dsn`` is a ``postgresql://user:password@host:port/database`` URL; ``schema`` is
    created on first open. ``connect_timeout`` bounds each connection attempt (seconds).
    """

    backend = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.dsn = dsn
        self.schema = schema
        self.address = describe_dsn(dsn)
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool[Any] | None = None
        self._listener: JournalListener | None = None

    def __repr__(self) -> str:
        return f"PostgresStorage({self.address!r}, schema={self.schema!r})"

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    async def open(self) -> None:
        """Connect the pool and migrate the schema; raises `StorageUnavailable` with what
        to check when the server cannot be reached."""
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout,
                server_settings={"search_path": quote_ident(self.schema)},
            )
        except (*_DB_ERRORS, TimeoutError, ValueError) as e:
            raise connect_error(self.address, e, self._connect_timeout) from e
        listener = JournalListener(self.dsn, self.schema, self._hub, self._connect_timeout)
        try:
            await self._migrate(pool)
            await listener.start()
        except (*_DB_ERRORS, TimeoutError) as e:
            pool.terminate()
            raise connect_error(self.address, e, self._connect_timeout) from e
        except BaseException:
            pool.terminate()
            raise
        self._pool = pool
        self._listener = listener

    async def _migrate(self, pool: asyncpg.Pool[Any]) -> None:
        schema = quote_ident(self.schema)
        async with pool.acquire() as conn, conn.transaction():
            # The advisory lock makes concurrent opens (several daemons starting at
            # once) migrate one after another; it is released at commit.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                POSTGRES_MIGRATE_LOCK,
                self.schema,
            )
            exists = await conn.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema
            )
            if not exists:
                await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute(POSTGRES_MIGRATIONS_TABLE)
            applied = [r[0] for r in await conn.fetch("SELECT version FROM orrery_migrations")]
            where = f"{self.address} schema {self.schema!r}"
            for migration in pending_migrations(POSTGRES_MIGRATIONS, applied, where):
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO orrery_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )

    async def schema_version(self) -> int:
        pool = self._get_pool("read the schema version")
        version = await pool.fetchval("SELECT coalesce(max(version), 0) FROM orrery_migrations")
        return int(version)

    async def _disconnect(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.stop()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            # Let in-flight statements finish (and commit) before the connections go.
            await asyncio.wait_for(pool.close(), timeout=self._connect_timeout)
        except TimeoutError:
            pool.terminate()

    def _get_pool(self, operation: str) -> asyncpg.Pool[Any]:
        if self._pool is None:
            raise StorageClosed(self, operation)
        return self._pool

    def _error(self, operation: str, error: BaseException) -> StorageError:
        return StorageError(
            f"{self!r}: {operation} failed: {type(error).__name__}: {error}; check that the "
            f"server is up and the schema was created by this Orrery version"
        )

    # -- key-value -------------------------------------------------------------------

    async def _kv_get(self, namespace: str, key: str) -> bytes | None:
        pool = self._get_pool("read from a store")
        try:
            value: bytes | None = await pool.fetchval(
                "SELECT value FROM orrery_kv WHERE namespace = $1 AND key = $2", namespace, key
            )
        except _DB_ERRORS as e:
            raise self._error(f"get {key!r}", e) from e
        return value

    async def _kv_put(self, namespace: str, key: str, value: bytes) -> None:
        pool = self._get_pool("write to a store")
        try:
            await pool.execute(
                "INSERT INTO orrery_kv (namespace, key, value) VALUES ($1, $2, $3) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value",
                namespace,
                key,
                value,
            )
        except _DB_ERRORS as e:
            raise self._error(f"put {key!r}", e) from e

    async def _kv_delete(self, namespace: str, key: str) -> bool:
        pool = self._get_pool("delete from a store")
        try:
            status: str = await pool.execute(
                "DELETE FROM orrery_kv WHERE namespace = $1 AND key = $2", namespace, key
            )
        except _DB_ERRORS as e:
            raise self._error(f"delete {key!r}", e) from e
        return status != "DELETE 0"

    async def _kv_page(
        self, namespace: str, low: str, low_inclusive: bool, high: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        pool = self._get_pool("scan a store")
        sql = _SQL_KV_PAGE[(low_inclusive, high is not None)]
        params = (namespace, low, high, limit) if high is not None else (namespace, low, limit)
        try:
            rows = await pool.fetch(sql, *params)
        except _DB_ERRORS as e:
            raise self._error(f"scan from {low!r}", e) from e
        return [(row[0], row[1]) for row in rows]

    # -- journal ---------------------------------------------------------------------

    async def _append(
        self,
        namespace: str,
        stream: str,
        expected_version: int | None,
        rows: list[EventRow],
        time_ns: int,
    ) -> int:
        pool = self._get_pool("append to a journal")
        types = [row.type for row in rows]
        data = [row.data for row in rows]
        meta = [row.meta for row in rows]
        for attempt in range(_APPEND_RETRIES + 1):
            try:
                row = await pool.fetchrow(
                    _SQL_APPEND, namespace, stream, expected_version, types, data, meta, time_ns
                )
            except asyncpg.UniqueViolationError as e:
                actual = await self._stream_version(namespace, stream)
                if expected_version is not None or attempt == _APPEND_RETRIES:
                    raise WrongExpectedVersion(
                        stream,
                        expected_version if expected_version is not None else actual,
                        actual,
                    ) from e
                continue
            except _DB_ERRORS as e:
                raise self._error(f"append to stream {stream!r}", e) from e
            assert row is not None, "orrery_append returns exactly one row"
            appended, version = row
            if not appended:
                assert expected_version is not None
                raise WrongExpectedVersion(stream, expected_version, version)
            return int(version)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _stream_version(self, namespace: str, stream: str) -> int:
        pool = self._get_pool("read a journal")
        try:
            version = await pool.fetchval(_SQL_HEAD, namespace, stream)
        except _DB_ERRORS as e:
            raise self._error(f"read the version of stream {stream!r}", e) from e
        return int(version)

    async def _read_stream(
        self, namespace: str, stream: str, from_version: int, limit: int
    ) -> list[RawEvent]:
        pool = self._get_pool("read a journal")
        try:
            rows = await pool.fetch(_SQL_READ_STREAM, namespace, stream, from_version, limit)
        except _DB_ERRORS as e:
            raise self._error(f"read stream {stream!r}", e) from e
        return [RawEvent._make(row) for row in rows]

    async def _read_all(
        self, namespace: str, from_position: int, until_time_ns: int | None, limit: int
    ) -> list[RawEvent]:
        pool = self._get_pool("read a journal")
        try:
            if until_time_ns is None:
                rows = await pool.fetch(_SQL_READ_ALL, namespace, from_position, limit)
            else:
                rows = await pool.fetch(
                    _SQL_READ_ALL_UNTIL, namespace, from_position, until_time_ns, limit
                )
        except _DB_ERRORS as e:
            raise self._error("read the journal", e) from e
        return [RawEvent._make(row) for row in rows]

    async def _save_snapshot(
        self, namespace: str, stream: str, version: int, state: bytes, time_ns: int
    ) -> None:
        current = await self._stream_version(namespace, stream)
        if version > current:
            raise InvalidArgument(
                "snapshot version",
                version,
                f"stream {stream!r} is only at version {current}; snapshot the state "
                f"of events already appended",
            )
        pool = self._get_pool("save a snapshot")
        try:
            await pool.execute(
                "INSERT INTO orrery_snapshots (namespace, stream, version, state, time_ns) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (namespace, stream, version) "
                "DO UPDATE SET state = EXCLUDED.state, time_ns = EXCLUDED.time_ns",
                namespace,
                stream,
                version,
                state,
                time_ns,
            )
        except _DB_ERRORS as e:
            raise self._error(f"save a snapshot of stream {stream!r}", e) from e

    async def _load_snapshot(
        self, namespace: str, stream: str, max_version: int | None
    ) -> tuple[int, bytes] | None:
        pool = self._get_pool("load a snapshot")
        try:
            row = await pool.fetchrow(
                "SELECT version, state FROM orrery_snapshots "
                "WHERE namespace = $1 AND stream = $2 AND ($3::integer IS NULL OR version <= $3) "
                "ORDER BY version DESC LIMIT 1",
                namespace,
                stream,
                max_version,
            )
        except _DB_ERRORS as e:
            raise self._error(f"load a snapshot of stream {stream!r}", e) from e
        return None if row is None else (int(row[0]), bytes(row[1]))

    async def _truncate(self, namespace: str, stream: str, before_version: int) -> int:
        pool = self._get_pool("truncate a journal stream")
        try:
            async with pool.acquire() as conn, conn.transaction():
                status = await conn.execute(_SQL_TRUNCATE_EVENTS, namespace, stream, before_version)
                await conn.execute(_SQL_TRUNCATE_SNAPSHOTS, namespace, stream, before_version)
        except _DB_ERRORS as e:
            raise self._error(f"truncate stream {stream!r}", e) from e
        return int(status.split()[-1])
