"""Persistence: key-value stores and event journals on SQLite (embedded) or PostgreSQL."""

from ._events import StoredEvent
from ._factory import DEFAULT_STATE_DIR, SQLITE_FILENAME, create_storage, open_storage
from ._journal import EventJournal
from ._postgres import PostgresStorage
from ._sqlite import SQLiteStorage
from ._storage import Storage
from ._store import KeyValueStore
from ._subscription import JournalSubscription
from .errors import (
    InvalidArgument,
    InvalidJournalEvent,
    InvalidName,
    MigrationError,
    StorageClosed,
    StorageError,
    StorageUnavailable,
    StoreError,
    UnencodableValue,
    WrongExpectedVersion,
)

__all__ = [
    "DEFAULT_STATE_DIR",
    "SQLITE_FILENAME",
    "EventJournal",
    "InvalidArgument",
    "InvalidJournalEvent",
    "InvalidName",
    "JournalSubscription",
    "KeyValueStore",
    "MigrationError",
    "PostgresStorage",
    "SQLiteStorage",
    "Storage",
    "StorageClosed",
    "StorageError",
    "StorageUnavailable",
    "StoreError",
    "StoredEvent",
    "UnencodableValue",
    "WrongExpectedVersion",
    "create_storage",
    "open_storage",
]
