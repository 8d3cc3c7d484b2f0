"""The in-process Context handed to a plugin, and its release when the plugin stops."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

from orrery.sdk import Bus, Clock, Journal, Store

from ._journal import PluginJournal
from ._routes import PluginRoutes
from ._services import PluginServices
from ._tasks import TaskOwner

__all__ = ["KernelContext", "ReleasableBus"]

T = TypeVar("T")
ConfigT = TypeVar("ConfigT")


class ReleasableBus(Bus, Protocol):
    """The bus client a Context owns: closable, and holdable for a hot swap."""

    def close(self) -> None: ...

    async def hold(self) -> None: ...

    def resume(self) -> None: ...

    def take_over(self, old: ReleasableBus) -> int: ...


class KernelContext(Generic[ConfigT]):
    """``ctx`` of one in-process plugin instance (an `orrery.sdk.Context`). Everything
    obtained here is released by `release`, which the kernel calls when the plugin
    stops, fails or is reloaded."""

    def __init__(
        self,
        *,
        name: str,
        config: ConfigT,
        node_id: str,
        clock: Clock,
        bus: ReleasableBus,
        services: PluginServices,
        routes: PluginRoutes,
        store: Store,
        journal_factory: Callable[[], Journal],
        restored: dict[str, Any] | None = None,
        handed_over: dict[str, Any] | None = None,
    ) -> None:
        self._name = name
        self._config = config
        self._node_id = node_id
        self._clock = clock
        self._restored = restored
        self._handed_over = handed_over if handed_over is not None else {}
        self._log = logging.getLogger(f"orrery.plugins.{name}")
        self._bus = bus
        self._services = services
        self._routes = routes
        self._store = store
        self._journal_factory = journal_factory
        self._journal: PluginJournal | None = None
        self._tasks = TaskOwner(name, self._log)

    @property
    def name(self) -> str:
        return self._name

    @property
    def config(self) -> ConfigT:
        return self._config

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def restored(self) -> dict[str, Any] | None:
        return self._restored

    @property
    def handed_over(self) -> dict[str, Any]:
        return self._handed_over

    @property
    def log(self) -> logging.Logger:
        return self._log

    @property
    def bus(self) -> ReleasableBus:
        return self._bus

    @property
    def services(self) -> PluginServices:
        return self._services

    @property
    def store(self) -> Store:
        return self._store

    @property
    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = PluginJournal(self._journal_factory())
        return self._journal

    @property
    def http(self) -> PluginRoutes:
        return self._routes

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str | None = None) -> Any:
        return self._tasks.spawn(coro, name=name)

    def activate(self) -> None:
        """Make services and routes of a staged (hot-swapped-in) instance visible."""
        self._services.activate()
        self._routes.activate()

    async def release(self, timeout: float) -> None:
        """Cancel spawned tasks, drop subscriptions, withdraw services and routes."""
        await self._tasks.cancel_all(timeout)
        self._bus.close()
        if self._journal is not None:
            self._journal.release()
        self._services.release()
        self._routes.release()
