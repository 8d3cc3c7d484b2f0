"""Errors raised by the storage package.

All derive from `orrery.sdk.errors.StoreError`, so plugin code that catches the SDK error
also catches these. Each keeps the offending object and says what to do.
"""

from __future__ import annotations

from typing import Any

from orrery.sdk.errors import StoreError, WrongExpectedVersion

__all__ = [
    "InvalidArgument",
    "InvalidJournalEvent",
    "InvalidName",
    "MigrationError",
    "StorageClosed",
    "StorageError",
    "StorageUnavailable",
    "StoreError",
    "UnencodableValue",
    "WrongExpectedVersion",
]


class StorageError(StoreError):
    """Base class of errors specific to the storage backends."""


class StorageUnavailable(StorageError, ConnectionError):
    """The database could not be opened or reached.

    ``address`` is where we tried (``host:port`` for PostgreSQL, the file path for
    SQLite); ``backend`` is ``"sqlite"`` or ``"postgres"``.
    """

    def __init__(self, backend: str, address: str, reason: str, hint: str) -> None:
        super().__init__(f"cannot open {backend} storage at {address}: {reason}. {hint}")
        self.backend = backend
        self.address = address
        self.reason = reason


class StorageClosed(StorageError):
    """An operation was attempted on a storage that is not open (or already closed)."""

    def __init__(self, storage: object, operation: str) -> None:
        super().__init__(
            f"cannot {operation}: {storage!r} is not open; call 'await storage.open()' "
            f"first (or use 'async with storage:') and do not use it after close()"
        )
        self.storage = storage
        self.operation = operation


class MigrationError(StorageError):
    """The database schema cannot be brought to the version this code expects."""

    def __init__(self, message: str, *, version: int | None = None) -> None:
        super().__init__(message)
        self.version = version


class UnencodableValue(StorageError, TypeError):
    """A value to store is not JSON-able.

    ``what`` names where it was going (a key, an event, a snapshot), ``value`` is the
    whole value, ``offender`` the innermost part that could not be encoded and ``path``
    where that part sits inside ``value`` (e.g. ``['items'][2]``).
    """

    def __init__(self, what: str, value: Any, offender: Any, path: str) -> None:
        where = f" at {path}" if path else ""
        super().__init__(
            f"{what}: value{where} of type {type(offender).__qualname__} is not JSON-able; "
            f"store only dicts with string keys, lists, str, int, float, bool and None "
            f"(convert it first, e.g. to a dict or a string)"
        )
        self.what = what
        self.value = value
        self.offender = offender
        self.path = path


class InvalidName(StorageError, ValueError):
    """A key, stream or namespace name cannot be stored."""

    def __init__(self, kind: str, name: object, reason: str) -> None:
        super().__init__(f"invalid {kind} {name!r}: {reason}")
        self.kind = kind
        self.name = name
        self.reason = reason


class InvalidArgument(StorageError, ValueError):
    """An argument such as a version or position is out of range or of the wrong type."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {name} {value!r}: {reason}")
        self.name = name
        self.value = value
        self.reason = reason


class InvalidJournalEvent(StorageError, ValueError):
    """Something passed to ``Journal.append`` is not an appendable event."""

    def __init__(self, event: object, reason: str) -> None:
        super().__init__(
            f"cannot append {event!r}: {reason}. Append orrery.sdk.Event objects or dicts "
            f"like {{'type': 'order.created', 'data': {{...}}}}"
        )
        self.event = event
        self.reason = reason
