"""The Context a plugin receives, as protocols.

The kernel (in process) and the sandbox worker (out of process) each implement these;
plugins only ever see the protocols.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar, overload, runtime_checkable

from typing_extensions import TypeVar as DefaultTypeVar

from ._event import Event
from ._services import ServiceKey
from .clock import Clock

__all__ = [
    "Bus",
    "Context",
    "Handler",
    "HttpRequest",
    "HttpResponse",
    "HttpRoutes",
    "Journal",
    "JournalEvent",
    "Services",
    "Store",
    "Subscription",
]

T = TypeVar("T")
#: The plugin's ``Config`` model: ``ctx: Context[Settings]`` types ``ctx.config``; a
#: bare ``Context`` means ``Context[Any]`` (a PEP 696 default, so strict mypy accepts it).
ConfigT_co = DefaultTypeVar("ConfigT_co", covariant=True, default=Any)

#: An event handler: sync or async; a non-None return answers a request.
Handler = Callable[[Event], Any | Awaitable[Any]]


@runtime_checkable
class Subscription(Protocol):
    """A live subscription returned by `Bus.subscribe`."""

    @property
    def pattern(self) -> str: ...

    @property
    def group(self) -> str | None: ...

    @property
    def durable(self) -> str | None: ...

    @property
    def active(self) -> bool: ...

    def unsubscribe(self) -> None:
        """Stop delivery now; events still queued for this subscriber are dropped."""

    async def drain(self) -> None:
        """Stop taking new events, deliver what is queued, then unsubscribe."""


@runtime_checkable
class Bus(Protocol):
    """Publish/subscribe and request/reply over NATS-style topics."""

    async def publish(
        self,
        topic: str,
        data: Any = None,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Event:
        """Publish ``data`` on ``topic``; returns the Event that was sent."""

    def subscribe(
        self,
        pattern: str,
        handler: Handler,
        *,
        group: str | None = None,
        durable: str | None = None,
    ) -> Subscription:
        """Deliver events matching ``pattern`` to ``handler`` in publish order.

        ``group`` makes competing consumers; ``durable`` names a subscription whose
        position survives restarts (at-least-once, acknowledged when the handler returns).
        """

    async def request(
        self,
        topic: str,
        data: Any = None,
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Publish and await the first reply's data; ``headers`` travel on the request.

        Raises `orrery.sdk.RequestTimeout` or `orrery.sdk.NoResponders`.
        """


@runtime_checkable
class Services(Protocol):
    """Typed registry of services shared between plugins."""

    def provide(self, key: ServiceKey[T] | str, impl: T) -> None:
        """Offer ``impl`` under ``key`` until this plugin stops."""

    @overload
    def get(self, key: ServiceKey[T]) -> T: ...

    @overload
    def get(self, key: str) -> Any: ...

    def get(self, key: ServiceKey[Any] | str) -> Any:
        """The implementation under ``key``; raises `orrery.sdk.ServiceNotFound`."""


@runtime_checkable
class Store(Protocol):
    """Durable per-plugin key-value store; values are JSON-able data."""

    async def get(self, key: str, default: Any = None) -> Any: ...

    async def put(self, key: str, value: Any) -> None: ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether it existed."""

    def scan(self, prefix: str = "") -> AsyncIterator[tuple[str, Any]]:
        """Iterate ``(key, value)`` pairs whose key starts with ``prefix``, in key order."""


@runtime_checkable
class JournalEvent(Protocol):
    """An event as stored in a journal stream."""

    @property
    def id(self) -> str: ...

    @property
    def stream(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def position(self) -> int: ...

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> Any: ...

    @property
    def time_ns(self) -> int: ...


@runtime_checkable
class Journal(Protocol):
    """Append-only, versioned event streams."""

    async def append(
        self,
        stream: str,
        events: Sequence[Any],
        expected_version: int | None = None,
    ) -> int:
        """Append and return the stream's new version.

        Raises `orrery.sdk.WrongExpectedVersion` when ``expected_version`` is given and
        does not match.
        """

    async def version(self, stream: str) -> int:
        """The stream's current version (0 when it does not exist)."""

    def read(self, stream: str, from_version: int = 0) -> AsyncIterator[JournalEvent]:
        """The stream's events from ``from_version`` on (inclusive; 0 or 1: all)."""

    def read_all(
        self, from_position: int = 0, until_time_ns: int | None = None
    ) -> AsyncIterator[JournalEvent]:
        """Every stream's events in global order, for replay; ``until_time_ns`` stops at
        a moment in time (rebuild state as of then)."""

    def subscribe(
        self, stream: str, handler: Callable[[JournalEvent], Any], *, from_version: int = 0
    ) -> Subscription:
        """Catch up from ``from_version`` (inclusive), then follow new appends."""

    async def save_snapshot(self, stream: str, version: int, state: Any) -> None: ...

    async def load_snapshot(
        self, stream: str, max_version: int | None = None
    ) -> tuple[int, Any] | None:
        """The latest snapshot at or below ``max_version``, as ``(version, state)``."""

    async def truncate(self, stream: str, before_version: int) -> int:
        """Delete the stream's events below ``before_version`` and the snapshots older
        than the newest one below it; returns how many events went.

        The latest event always stays (the stream keeps its version). Reading from an
        older version afterwards starts at the first event kept.
        """


@runtime_checkable
class HttpRequest(Protocol):
    """What a plugin route handler receives: no web framework types."""

    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def params(self) -> Mapping[str, str]:
        """Path parameters, e.g. ``{"id": "7"}`` for route ``/tasks/{id}``."""

    @property
    def query(self) -> Mapping[str, str]: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def principal(self) -> str:
        """Who made the request, as authenticated by the daemon."""

    async def json(self) -> Any: ...


class HttpResponse:
    """Return this from a route handler for a body that is not JSON (text, CSV, bytes)."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        body: str | bytes,
        *,
        status: int = 200,
        content_type: str = "text/plain; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = dict(headers or {})


@runtime_checkable
class HttpRoutes(Protocol):
    """Mounts plugin routes under ``/v1/plugins/<name>/`` on the daemon."""

    def route(
        self,
        method: str,
        path: str,
        handler: Callable[[HttpRequest], Awaitable[Any] | Any],
    ) -> None: ...


@runtime_checkable
class Context(Protocol[ConfigT_co]):
    """Everything a plugin gets from the kernel; released when the plugin stops.

    Generic in the plugin's config model, so ``ctx: Context[Settings]`` makes
    ``ctx.config`` a ``Settings``; a bare ``Context`` is ``Context[Any]``.
    """

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> ConfigT_co:
        """The plugin's validated ``Config`` model instance (never re-validate it)."""

    @property
    def node_id(self) -> str:
        """The id of the kernel this plugin runs in (stable across restarts)."""

    @property
    def clock(self) -> Clock:
        """The clock to take time from; tests inject a `orrery.sdk.testing.ManualClock`."""

    @property
    def restored(self) -> dict[str, Any] | None:
        """What the previous version returned from `orrery_snapshot` across a hot reload,
        already in ``orrery_start``; None on a cold start."""

    @property
    def handed_over(self) -> dict[str, Any]:
        """Live objects the previous in-process version returned from `orrery_handover`
        (empty when there was none, and always for sandboxed plugins)."""

    @property
    def log(self) -> logging.Logger: ...

    @property
    def bus(self) -> Bus: ...

    @property
    def services(self) -> Services: ...

    @property
    def store(self) -> Store: ...

    @property
    def journal(self) -> Journal: ...

    @property
    def http(self) -> HttpRoutes: ...

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> Awaitable[T]:
        """Run ``coro`` in the background, owned (and cancelled at stop) by the plugin."""
