"""The event journal a plugin gets as ``ctx.journal``, over any storage backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from orrery.sdk import JournalEvent

from ._codec import decode, encode, validate_name
from ._events import StoredEvent, decode_event, encode_events
from ._subscription import JournalSubscription
from .errors import InvalidArgument

if TYPE_CHECKING:
    from ._storage import Storage

__all__ = ["EventJournal"]

#: Events fetched per round trip by `EventJournal.read` and `EventJournal.read_all`.
READ_PAGE_SIZE = 500


def _check_version(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(name, value, "it must be an int >= 0")
    return value


class EventJournal:
    """Append-only, versioned event streams in one namespace (implements
    `orrery.sdk.Journal`).

    Versions count from 1 within each stream. ``append`` is atomic for the whole batch
    and checks ``expected_version`` (0: the stream must not exist yet) against the
    stream's current version, raising `orrery.sdk.WrongExpectedVersion` on mismatch.
    ``read`` and ``subscribe`` start *at* ``from_version`` (inclusive; 0 and 1 both mean
    from the start). ``read_all`` replays every stream of the namespace in append order,
    optionally only what was appended up to a moment (time travel).
    """

    __slots__ = ("_namespace", "_storage")

    def __init__(self, storage: Storage, namespace: str) -> None:
        self._storage = storage
        self._namespace = validate_name("namespace", namespace)

    def __repr__(self) -> str:
        return f"<EventJournal {self._namespace!r} on {self._storage!r}>"

    @property
    def namespace(self) -> str:
        """The namespace holding this journal's streams ('' for the kernel's own)."""
        return self._namespace

    async def append(
        self,
        stream: str,
        events: Sequence[Any],
        expected_version: int | None = None,
    ) -> int:
        """Append ``events`` (Event objects or ``{'type', 'data', ...}`` dicts) to
        ``stream`` atomically and return its new version.

        Raises `orrery.sdk.WrongExpectedVersion` when ``expected_version`` is given and
        the stream is at another version; nothing is written then. An empty
        ``events`` writes nothing and returns the current version (still checked).
        """
        validate_name("stream", stream, allow_empty=False)
        if expected_version is not None:
            _check_version("expected_version", expected_version)
        rows = encode_events(stream, events)
        version = await self._storage._append(
            self._namespace, stream, expected_version, rows, self._storage._clock_ns()
        )
        if rows:
            self._storage._hub.notify(self._namespace, stream)
        return version

    async def version(self, stream: str) -> int:
        """The stream's current version (0 when it does not exist)."""
        validate_name("stream", stream, allow_empty=False)
        return await self._storage._stream_version(self._namespace, stream)

    async def read(self, stream: str, from_version: int = 0) -> AsyncIterator[StoredEvent]:
        """Iterate the stream's events from ``from_version`` (inclusive) in version order."""
        validate_name("stream", stream, allow_empty=False)
        version = max(_check_version("from_version", from_version), 1)
        while True:
            page = await self._storage._read_stream(
                self._namespace, stream, version, READ_PAGE_SIZE
            )
            for raw in page:
                yield decode_event(raw)
            if len(page) < READ_PAGE_SIZE:
                return
            version = page[-1].version + 1

    async def read_all(
        self, from_position: int = 0, until_time_ns: int | None = None
    ) -> AsyncIterator[StoredEvent]:
        """Iterate every event of this namespace in append order, from ``from_position``
        (inclusive).

        With ``until_time_ns`` only events appended at or before that moment are
        returned, which replays the journal as it was then (a whole batch shares one
        append time, so it is either entirely in or entirely out).
        """
        position = _check_version("from_position", from_position)
        if until_time_ns is not None:
            _check_version("until_time_ns", until_time_ns)
        while True:
            page = await self._storage._read_all(
                self._namespace, position, until_time_ns, READ_PAGE_SIZE
            )
            for raw in page:
                yield decode_event(raw)
            if len(page) < READ_PAGE_SIZE:
                return
            position = page[-1].position + 1

    def subscribe(
        self,
        stream: str,
        handler: Callable[[JournalEvent], Any],
        *,
        from_version: int = 0,
    ) -> JournalSubscription:
        """Call ``handler`` (sync or async) for each event of ``stream`` from
        ``from_version`` (inclusive): first those already stored, then each new one
        appended through this storage. The storage cancels it on close.
        """
        validate_name("stream", stream, allow_empty=False)
        _check_version("from_version", from_version)
        self._storage._check_open("subscribe to a journal stream")
        return JournalSubscription(
            self._storage._hub, self._namespace, stream, handler, from_version, self.read
        )

    async def save_snapshot(self, stream: str, version: int, state: Any) -> None:
        """Save ``state`` as the stream's state after applying events up to ``version``.

        Raises `InvalidArgument` when ``version`` is beyond the stream's current version.
        Saving again at the same version replaces that snapshot.
        """
        validate_name("stream", stream, allow_empty=False)
        _check_version("version", version)
        raw = encode(state, f"snapshot of stream {stream!r} at version {version}")
        await self._storage._save_snapshot(
            self._namespace, stream, version, raw, self._storage._clock_ns()
        )

    async def load_snapshot(
        self, stream: str, max_version: int | None = None
    ) -> tuple[int, Any] | None:
        """The latest snapshot ``(version, state)`` of ``stream``, or ``None``.

        With ``max_version``, the latest one at or below it (to roll state back).
        Continue with ``read(stream, from_version=version + 1)``.
        """
        validate_name("stream", stream, allow_empty=False)
        if max_version is not None:
            _check_version("max_version", max_version)
        found = await self._storage._load_snapshot(self._namespace, stream, max_version)
        if found is None:
            return None
        return found[0], decode(found[1])

    async def truncate(self, stream: str, before_version: int) -> int:
        """Delete events of ``stream`` with a version below ``before_version``, and the
        snapshots older than the newest snapshot below it; the number of events deleted.

        For retention once a snapshot (or a consumer's position) covers them. The
        stream's latest event is always kept, so its version and ``expected_version``
        checks carry on. ``read`` from a truncated version starts at the first event
        kept, and ``read_all`` no longer replays what was deleted.
        """
        validate_name("stream", stream, allow_empty=False)
        _check_version("before_version", before_version)
        return await self._storage._truncate(self._namespace, stream, before_version)
