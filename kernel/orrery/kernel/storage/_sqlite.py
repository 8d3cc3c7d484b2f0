"""The embedded SQLite backend: one file, WAL mode, one connection.

Statements run directly on the event loop thread, not in a worker thread. That is
deliberate: with WAL and ``synchronous=NORMAL`` a commit only appends to the WAL file
(no fsync), so a point read or a small write takes microseconds, less than the cost of a
thread hop (tens of microseconds) that ``asyncio.to_thread`` would add to every call.
Batches are inserted with one ``executemany`` in one transaction. The loop can stall
only when another *process* holds the write lock, for at most ``busy_timeout``.
Because every operation runs to completion without awaiting, operations of one
process never interleave, and ``BEGIN IMMEDIATE`` serialises writers across processes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orrery.sdk.errors import WrongExpectedVersion

from ._events import EventRow, RawEvent
from ._migrations import SQLITE_MIGRATIONS, SQLITE_MIGRATIONS_TABLE, pending_migrations
from ._storage import Storage
from .errors import InvalidArgument, StorageClosed, StorageError, StorageUnavailable

__all__ = ["SQLiteStorage"]

_EVENT_COLUMNS = "stream, version, position, type, data, meta, time_ns"
_SQL_HEAD = "SELECT coalesce(max(version), 0) FROM orrery_events WHERE namespace = ? AND stream = ?"
_SQL_INSERT = (
    "INSERT INTO orrery_events (namespace, stream, version, type, data, meta, time_ns) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# Retention: never the latest event (it carries the stream's version), and never the
# newest snapshot below the cut (a reader restarts from it).
_SQL_TRUNCATE_EVENTS = (
    "DELETE FROM orrery_events WHERE namespace = ?1 AND stream = ?2 AND version < ?3 "
    "AND version < (SELECT max(version) FROM orrery_events WHERE namespace = ?1 AND stream = ?2)"
)
_SQL_TRUNCATE_SNAPSHOTS = (
    "DELETE FROM orrery_snapshots WHERE namespace = ?1 AND stream = ?2 AND version < ("
    "SELECT max(version) FROM orrery_snapshots "
    "WHERE namespace = ?1 AND stream = ?2 AND version < ?3)"
)
_SQL_READ_STREAM = (
    f"SELECT {_EVENT_COLUMNS} FROM orrery_events "
    "WHERE namespace = ? AND stream = ? AND version >= ? ORDER BY version LIMIT ?"
)
_SQL_READ_ALL = (
    f"SELECT {_EVENT_COLUMNS} FROM orrery_events "
    "WHERE namespace = ? AND position >= ? ORDER BY position LIMIT ?"
)
_SQL_READ_ALL_UNTIL = (
    f"SELECT {_EVENT_COLUMNS} FROM orrery_events "
    "WHERE namespace = ? AND position >= ? AND time_ns <= ? ORDER BY position LIMIT ?"
)
_SQL_KV_PAGE = {
    (inclusive, bounded): "SELECT key, value FROM orrery_kv WHERE namespace = ? "
    f"AND key {'>=' if inclusive else '>'} ?{' AND key < ?' if bounded else ''} "
    "ORDER BY key LIMIT ?"
    for inclusive in (True, False)
    for bounded in (True, False)
}


class SQLiteStorage(Storage):
    """Storage in one SQLite file (embedded default: ``<state_dir>/orrery.db``).

    ``busy_timeout`` (seconds) is how long a write waits for another process that
    holds the database's write lock before failing.
    """

    backend = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def open(self) -> None:
        """Open the file (creating it and its directory), then migrate the schema."""
        if self._conn is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        except (OSError, sqlite3.Error) as e:
            raise StorageUnavailable(
                "sqlite",
                str(self.path),
                str(e),
                "Check that the state directory exists and is writable, or pass another "
                "--state-dir",
            ) from e
        try:
            await self._enable_wal(conn)
            # NORMAL skips the fsync per commit (in WAL mode a power cut can lose the
            # last commits, never corrupt the file).
            conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate(conn)
        except sqlite3.Error as e:
            conn.close()
            raise StorageUnavailable(
                "sqlite",
                str(self.path),
                str(e),
                "Check that the file is an Orrery database and not locked by another "
                "program for longer than busy_timeout",
            ) from e
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL, which lets readers run beside the writer.

        Switching needs an exclusive lock, and SQLite reports "database is locked" at
        once, without waiting busy_timeout, while another process is opening the same
        new file; so retry with a short backoff until busy_timeout has passed.
        """
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.001
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock first, so two processes opening the same
        # new file migrate one after the other; the second then finds nothing to do.
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(SQLITE_MIGRATIONS_TABLE)
            applied = [v for (v,) in conn.execute("SELECT version FROM orrery_migrations")]
            for migration in pending_migrations(SQLITE_MIGRATIONS, applied, str(self.path)):
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO orrery_migrations (version, name, applied_ns) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time_ns()),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def schema_version(self) -> int:
        conn = self._connection("read the schema version")
        (version,) = conn.execute(
            "SELECT coalesce(max(version), 0) FROM orrery_migrations"
        ).fetchone()
        return int(version)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Fold the WAL back into the main file so it is complete on its own.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # another process still reads; it checkpoints when it closes
        finally:
            conn.close()

    def _connection(self, operation: str) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageClosed(self, operation)
        return self._conn

    def _error(self, operation: str, error: sqlite3.Error) -> StorageError:
        hint = (
            "another process held the write lock for longer than busy_timeout; retry or "
            "raise busy_timeout"
            if isinstance(error, sqlite3.OperationalError) and "locked" in str(error)
            else "check the database file and the disk"
        )
        return StorageError(f"{self!r}: {operation} failed: {error}; {hint}")

    # -- key-value -------------------------------------------------------------------

    async def _kv_get(self, namespace: str, key: str) -> bytes | None:
        conn = self._connection("read from a store")
        try:
            row = conn.execute(
                "SELECT value FROM orrery_kv WHERE namespace = ? AND key = ?", (namespace, key)
            ).fetchone()
        except sqlite3.Error as e:
            raise self._error(f"get {key!r}", e) from e
        return None if row is None else bytes(row[0])

    async def _kv_put(self, namespace: str, key: str, value: bytes) -> None:
        conn = self._connection("write to a store")
        try:
            conn.execute(
                "INSERT INTO orrery_kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                (namespace, key, value),
            )
        except sqlite3.Error as e:
            raise self._error(f"put {key!r}", e) from e

    async def _kv_delete(self, namespace: str, key: str) -> bool:
        conn = self._connection("delete from a store")
        try:
            cursor = conn.execute(
                "DELETE FROM orrery_kv WHERE namespace = ? AND key = ?", (namespace, key)
            )
        except sqlite3.Error as e:
            raise self._error(f"delete {key!r}", e) from e
        return cursor.rowcount > 0

    async def _kv_page(
        self, namespace: str, low: str, low_inclusive: bool, high: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        conn = self._connection("scan a store")
        sql = _SQL_KV_PAGE[(low_inclusive, high is not None)]
        params = (namespace, low, high, limit) if high is not None else (namespace, low, limit)
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise self._error(f"scan from {low!r}", e) from e

    # -- journal ---------------------------------------------------------------------

    async def _append(
        self,
        namespace: str,
        stream: str,
        expected_version: int | None,
        rows: list[EventRow],
        time_ns: int,
    ) -> int:
        conn = self._connection("append to a journal")
        try:
            with _write_transaction(conn):
                (current,) = conn.execute(_SQL_HEAD, (namespace, stream)).fetchone()
                if expected_version is not None and expected_version != current:
                    raise WrongExpectedVersion(stream, expected_version, current)
                if rows:
                    conn.executemany(
                        _SQL_INSERT,
                        [
                            (namespace, stream, current + n, row.type, row.data, row.meta, time_ns)
                            for n, row in enumerate(rows, 1)
                        ],
                    )
        except sqlite3.IntegrityError as e:
            # Only reachable if something bypassed BEGIN IMMEDIATE; the unique
            # (namespace, stream, version) constraint still refused a duplicate.
            actual = self._head(conn, namespace, stream)
            raise WrongExpectedVersion(
                stream, expected_version if expected_version is not None else actual, actual
            ) from e
        except sqlite3.Error as e:
            raise self._error(f"append to stream {stream!r}", e) from e
        return int(current) + len(rows)

    def _head(self, conn: sqlite3.Connection, namespace: str, stream: str) -> int:
        (current,) = conn.execute(_SQL_HEAD, (namespace, stream)).fetchone()
        return int(current)

    async def _stream_version(self, namespace: str, stream: str) -> int:
        conn = self._connection("read a journal")
        try:
            return self._head(conn, namespace, stream)
        except sqlite3.Error as e:
            raise self._error(f"read the version of stream {stream!r}", e) from e

    async def _read_stream(
        self, namespace: str, stream: str, from_version: int, limit: int
    ) -> list[RawEvent]:
        conn = self._connection("read a journal")
        try:
            rows = conn.execute(
                _SQL_READ_STREAM, (namespace, stream, from_version, limit)
            ).fetchall()
        except sqlite3.Error as e:
            raise self._error(f"read stream {stream!r}", e) from e
        return [RawEvent._make(row) for row in rows]

    async def _read_all(
        self, namespace: str, from_position: int, until_time_ns: int | None, limit: int
    ) -> list[RawEvent]:
        conn = self._connection("read a journal")
        try:
            if until_time_ns is None:
                rows = conn.execute(_SQL_READ_ALL, (namespace, from_position, limit)).fetchall()
            else:
                rows = conn.execute(
                    _SQL_READ_ALL_UNTIL, (namespace, from_position, until_time_ns, limit)
                ).fetchall()
        except sqlite3.Error as e:
            raise self._error("read the journal", e) from e
        return [RawEvent._make(row) for row in rows]

    async def _save_snapshot(
        self, namespace: str, stream: str, version: int, state: bytes, time_ns: int
    ) -> None:
        conn = self._connection("save a snapshot")
        try:
            current = self._head(conn, namespace, stream)
            if version > current:
                raise InvalidArgument(
                    "snapshot version",
                    version,
                    f"stream {stream!r} is only at version {current}; snapshot the state "
                    f"of events already appended",
                )
            conn.execute(
                "INSERT OR REPLACE INTO orrery_snapshots "
                "(namespace, stream, version, state, time_ns) VALUES (?, ?, ?, ?, ?)",
                (namespace, stream, version, state, time_ns),
            )
        except sqlite3.Error as e:
            raise self._error(f"save a snapshot of stream {stream!r}", e) from e

    async def _load_snapshot(
        self, namespace: str, stream: str, max_version: int | None
    ) -> tuple[int, bytes] | None:
        conn = self._connection("load a snapshot")
        try:
            row = conn.execute(
                "SELECT version, state FROM orrery_snapshots "
                "WHERE namespace = ? AND stream = ? AND version <= ? "
                "ORDER BY version DESC LIMIT 1",
                (namespace, stream, max_version if max_version is not None else 2**62),
            ).fetchone()
        except sqlite3.Error as e:
            raise self._error(f"load a snapshot of stream {stream!r}", e) from e
        return None if row is None else (int(row[0]), bytes(row[1]))

    async def _truncate(self, namespace: str, stream: str, before_version: int) -> int:
        conn = self._connection("truncate a journal stream")
        params = (namespace, stream, before_version)
        try:
            with _write_transaction(conn):
                deleted = conn.execute(_SQL_TRUNCATE_EVENTS, params).rowcount
                conn.execute(_SQL_TRUNCATE_SNAPSHOTS, params)
        except sqlite3.Error as e:
            raise self._error(f"truncate stream {stream!r}", e) from e
        return int(deleted)


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` (take the write lock up front, so a read-then-write cannot
    lose a race), commit on success, roll back on anything else."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
