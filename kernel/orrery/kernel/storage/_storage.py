"""The `Storage` base class: lifecycle, and the primitives each backend implements."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar

from ._events import EventRow, RawEvent
from ._journal import EventJournal
from ._store import KeyValueStore
from ._subscription import SubscriptionHub
from .errors import StorageClosed

__all__ = ["Storage"]

#: The namespace of ``journal()`` without an argument: the kernel's own streams.
KERNEL_NAMESPACE = ""


class Storage(ABC):
    """Durable key-value stores and event journals in one database.

    ``await open()`` connects and migrates the schema; ``await close()`` cancels
    journal subscriptions and flushes. Both also work as ``async with storage:``.
    `store` and `journal` hand out views bound to a namespace (a plugin's name); views
    are cheap and share the storage's connection(s).
    """

    #: Short backend name: "sqlite" or "postgres".
    backend: ClassVar[str]

    def __init__(self) -> None:
        self._hub = SubscriptionHub()
        self._last_time_ns = 0

    # -- lifecycle -------------------------------------------------------------------

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """Whether `open` has completed and `close` has not been called."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (idempotent, safe across processes)."""

    async def close(self) -> None:
        """Stop journal subscriptions, flush and disconnect. Closing twice is fine."""
        await self._hub.aclose()
        await self._disconnect()

    @abstractmethod
    async def _disconnect(self) -> None: ...

    @abstractmethod
    async def schema_version(self) -> int:
        """The highest schema migration applied to the database."""

    async def __aenter__(self) -> Storage:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self, operation: str) -> None:
        if not self.is_open:
            raise StorageClosed(self, operation)

    def _clock_ns(self) -> int:
        # Never step back within one storage, so append times follow positions even if
        # the wall clock is adjusted; time-travel reads rely on that.
        now = time.time_ns()
        if now <= self._last_time_ns:
            now = self._last_time_ns + 1
        self._last_time_ns = now
        return now

    # -- views -----------------------------------------------------------------------

    def store(self, namespace: str) -> KeyValueStore:
        """The key-value store of ``namespace`` (implements `orrery.sdk.Store`)."""
        return KeyValueStore(self, namespace)

    def journal(self, namespace: str | None = None) -> EventJournal:
        """The journal of ``namespace`` (implements `orrery.sdk.Journal`).

        Streams of different namespaces are separate; ``None`` is the kernel's own.
        """
        return EventJournal(self, KERNEL_NAMESPACE if namespace is None else namespace)

    # -- backend primitives: names are validated and values encoded by the caller ----

    @abstractmethod
    async def _kv_get(self, namespace: str, key: str) -> bytes | None: ...

    @abstractmethod
    async def _kv_put(self, namespace: str, key: str, value: bytes) -> None: ...

    @abstractmethod
    async def _kv_delete(self, namespace: str, key: str) -> bool: ...

    @abstractmethod
    async def _kv_page(
        self, namespace: str, low: str, low_inclusive: bool, high: str | None, limit: int
    ) -> list[tuple[str, bytes]]:
        """Up to ``limit`` rows with ``low <(=) key < high`` (``high`` None: no bound)."""

    @abstractmethod
    async def _append(
        self,
        namespace: str,
        stream: str,
        expected_version: int | None,
        rows: list[EventRow],
        time_ns: int,
    ) -> int:
        """Insert ``rows`` as the next versions in one transaction; the new version."""

    @abstractmethod
    async def _stream_version(self, namespace: str, stream: str) -> int: ...

    @abstractmethod
    async def _read_stream(
        self, namespace: str, stream: str, from_version: int, limit: int
    ) -> list[RawEvent]: ...

    @abstractmethod
    async def _read_all(
        self, namespace: str, from_position: int, until_time_ns: int | None, limit: int
    ) -> list[RawEvent]: ...

    @abstractmethod
    async def _save_snapshot(
        self, namespace: str, stream: str, version: int, state: bytes, time_ns: int
    ) -> None: ...

    @abstractmethod
    async def _load_snapshot(
        self, namespace: str, stream: str, max_version: int | None
    ) -> tuple[int, bytes] | None: ...

    @abstractmethod
    async def _truncate(self, namespace: str, stream: str, before_version: int) -> int:
        """Delete events below ``before_version`` but never the latest, and snapshots
        older than the newest one below ``before_version``; events deleted."""
