"""Choosing and opening a backend from configuration values."""

from __future__ import annotations

from pathlib import Path

from ._postgres import PostgresStorage
from ._sqlite import SQLiteStorage
from ._storage import Storage
from .errors import StorageError

__all__ = ["DEFAULT_STATE_DIR", "SQLITE_FILENAME", "create_storage", "open_storage"]

#: The state directory when none is given (the daemon's ``--state-dir`` default).
DEFAULT_STATE_DIR = Path(".orrery")
#: The SQLite file's name inside the state directory.
SQLITE_FILENAME = "orrery.db"
_BACKENDS = {"sqlite": "sqlite", "postgres": "postgres", "postgresql": "postgres"}


def create_storage(
    backend: str = "sqlite",
    *,
    path: str | Path | None = None,
    state_dir: str | Path | None = None,
    dsn: str | None = None,
    schema: str = "public",
) -> Storage:
    """A storage for ``backend``, not yet opened.

    ``"sqlite"`` uses ``path``, by default ``<state_dir>/orrery.db`` (``state_dir``
    defaults to ``./.orrery``). ``"postgres"`` (or ``"postgresql"``) needs ``dsn`` and
    uses ``schema``.
    """
    kind = _BACKENDS.get(backend.lower()) if isinstance(backend, str) else None
    if kind is None:
        raise StorageError(
            f"unknown storage backend {backend!r}; use one of 'sqlite' (embedded, the "
            f"default) or 'postgres'"
        )
    if kind == "postgres":
        if not dsn:
            raise StorageError(
                "the postgres storage backend needs a DSN: pass "
                "dsn='postgresql://user:password@host:5432/database'"
            )
        return PostgresStorage(dsn, schema=schema)
    if path is None:
        path = Path(state_dir if state_dir is not None else DEFAULT_STATE_DIR) / SQLITE_FILENAME
    return SQLiteStorage(path)


async def open_storage(
    backend: str = "sqlite",
    *,
    path: str | Path | None = None,
    state_dir: str | Path | None = None,
    dsn: str | None = None,
    schema: str = "public",
) -> Storage:
    """Like `create_storage`, and opened (connected and migrated).

    Raises `StorageUnavailable` naming the file or server address and what to check
    when the database cannot be reached.
    """
    storage = create_storage(backend, path=path, state_dir=state_dir, dsn=dsn, schema=schema)
    await storage.open()
    return storage
