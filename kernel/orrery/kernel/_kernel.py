"""The embeddable kernel: ``async with Kernel(...) as k``."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

from orrery.sdk import Bus, Clock, Plugin, PluginError, SystemClock

from ._choices import OperatorChoices
from ._config import OrreryConfig, load_config
from ._introspection import provide_introspection
from .bus import MemoryBus, create_bus
from .errors import KernelError
from .plugins import (
    FolderWatcher,
    HookRelay,
    PluginInfo,
    PluginManager,
    PluginState,
    RouteTable,
    ServiceRegistry,
    run_pip,
)
from .state_dir import StateLock, load_node_id, private_file
from .storage import Storage, open_storage

__all__ = ["Kernel"]

log = logging.getLogger("orrery.kernel")
_KERNEL_NAMESPACE = "orrery.kernel"


class Kernel:
    """The Orrery kernel: event bus, plugin lifecycle, storage.

    ::

        async with Kernel(plugins_dirs=["plugins"], state_dir=".orrery") as k:
            await k.bus.publish("greet.hello", {"who": "world"})
            print(k.plugins["greeter"].state)   # "active"

    Entry-point plugins are discovered unless ``entry_points=False``; ``config`` is a
    TOML path, a mapping or an `OrreryConfig`, with ``ORRERY_…`` environment overrides.
    ``clock`` is what plugins get as ``ctx.clock`` (default: the system clock; tests pass
    an `orrery.sdk.testing.ManualClock`).

    One kernel runs per state directory: `start` takes its lock and raises
    `StateDirLocked` (naming the holder's pid) when another kernel holds it.
    """

    def __init__(
        self,
        *,
        plugins_dirs: Iterable[str | os.PathLike[str]] = (),
        state_dir: str | os.PathLike[str] = ".orrery",
        config: str | os.PathLike[str] | Mapping[str, Any] | OrreryConfig | None = None,
        entry_points: bool | None = None,
        node_id: str | None = None,
        env: Mapping[str, str] | None = None,
        plugins: Iterable[type[Plugin]] = (),
        watch: bool | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = load_config(config, env=env)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.state_dir = Path(state_dir)
        self.plugins_dirs = [Path(p) for p in self.config.kernel.plugins_dirs] + [
            Path(p) for p in plugins_dirs
        ]
        self.entry_points = (
            self.config.kernel.entry_points if entry_points is None else entry_points
        )
        self.plugin_classes = list(plugins)
        self.watch = self.config.kernel.watch if watch is None else watch
        #: One kernel per state directory; taken by `start` (a daemon takes it earlier).
        self.state_lock = StateLock(self.state_dir)
        self._node_id = node_id or self.config.kernel.node_id
        self._storage: Storage | None = None
        self._bus: MemoryBus | None = None
        self._manager: PluginManager | None = None
        self._kernel_bus: Bus | None = None
        self._parts: AsyncExitStack | None = None
        self._watcher: FolderWatcher | None = None
        self._started = False
        self.started_at: float | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Lock the state directory, open storage, start the bus, discover, resolve and
        start plugins, watch folders.

        Each part is undone if a later one fails, in reverse: a kernel that could not
        start holds nothing (no running plugin, no open storage, no lock).
        """
        if self._started:
            raise KernelError("kernel already started; each Kernel starts once")
        self._started = True
        began = time.perf_counter()
        async with AsyncExitStack() as parts:
            self.state_lock.acquire()
            parts.callback(self.state_lock.release)
            node_id = self._node_id = self._node_id or load_node_id(self.state_dir)
            configured = self.config.storage.path
            db = Path(configured) if configured else self.state_dir / "orrery.db"
            if self.config.storage.backend == "sqlite":
                # SQLite gives its -wal and -shm files the database file's mode.
                private_file(db)
            self._storage = storage = await open_storage(
                self.config.storage.backend, path=db, dsn=self.config.storage.dsn
            )
            parts.push_async_callback(storage.close)
            # Durable subscriptions of the memory bus live in the storage's journal;
            # a NATS bus keeps them in JetStream. Either raises one clear error
            # (StorageUnavailable / BusUnavailable) when its server is unreachable.
            self._bus = bus = create_bus(self.config.bus, node_id, storage)
            await bus.start()
            parts.push_async_callback(bus.stop)
            self._kernel_bus = bus.client(f"orrery://{node_id}/kernel")
            choices = OperatorChoices(storage.store(_KERNEL_NAMESPACE))
            await choices.load()
            # Folders are watched as they were found: one that vanishes before the
            # watcher starts is an error, not silently unwatched.
            watched = [d for d in self.plugins_dirs if d.is_dir()] if self.watch else []
            self._manager = manager = PluginManager(
                node_id=node_id,
                config=self.config,
                plugins_dirs=self.plugins_dirs,
                entry_points=self.entry_points,
                plugin_classes=self.plugin_classes,
                bus=bus,
                storage=storage,
                choices=choices,
                clock=self.clock,
            )
            manager.prepare()
            provide_introspection(self)
            # Pushed before starting: a start that fails (or is cancelled) half-way
            # stops exactly the plugins that did start.
            parts.push_async_callback(self._stop_plugins, manager)
            await manager.start_all()
            if watched:
                watcher = FolderWatcher(
                    watched,
                    manager.sync_path,
                    settle=self.config.kernel.reload_settle,
                    quiet=self.config.kernel.reload_quiet,
                )
                parts.push_async_callback(watcher.stop)
                watcher.start()
                self._watcher = watcher
            self._parts = parts.pop_all()
        self.started_at = time.time()
        counts: dict[str, int] = {}
        for info in manager.infos.values():
            counts[str(info.state)] = counts.get(str(info.state), 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no plugins"
        log.info(
            "kernel %s ready in %.0f ms: %s", node_id, (time.perf_counter() - began) * 1000, summary
        )

    async def quiesce(self, timeout: float | None = None) -> bool:
        """Wait until no published event is queued or being handled anywhere.

        Handlers may publish further events while this waits; those are waited for too.
        Returns False if the bus had not settled after ``timeout`` seconds (default: the
        kernel's stop timeout).
        """
        if self._bus is None:
            return True
        limit = self.config.kernel.stop_timeout if timeout is None else timeout
        if self._manager is not None:
            await self._manager.lifecycle.flush()
        try:
            async with asyncio.timeout(limit):
                await self._bus.flush()
        except TimeoutError:
            log.warning("the bus did not settle within %.1fs; dropping what is queued", limit)
            return False
        return True

    async def stop(self) -> None:
        """Stop watching, let queued events be handled, stop plugins in reverse dependency
        order, drain the bus, close storage, release the state directory."""
        parts, self._parts = self._parts, None
        if parts is not None:
            await parts.aclose()
            log.info("kernel %s stopped", self._node_id)

    async def _stop_plugins(self, manager: PluginManager) -> None:
        # Stopping a plugin drops what is still queued for it: deliver it first.
        await self.quiesce()
        await manager.stop_all()

    async def __aenter__(self) -> Kernel:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- views ---------------------------------------------------------------------------

    @property
    def watcher(self) -> FolderWatcher | None:
        """The plugin-folder watcher while the kernel watches folders."""
        return self._watcher if self._parts is not None else None

    @property
    def manager(self) -> PluginManager:
        if self._manager is None:
            raise KernelError("the kernel is not started; use 'async with Kernel(...)'")
        return self._manager

    @property
    def node_id(self) -> str:
        if self._node_id is None:
            raise KernelError("the kernel is not started; use 'async with Kernel(...)'")
        return self._node_id

    @property
    def bus(self) -> Bus:
        """The kernel's own bus client (events have source ``orrery://<node>/kernel``)."""
        if self._kernel_bus is None:
            raise KernelError("the kernel is not started; use 'async with Kernel(...)'")
        return self._kernel_bus

    @property
    def plugins(self) -> Mapping[str, PluginInfo]:
        """Plugin name -> info with ``.state``, ``.version``, ``.error``."""
        return MappingProxyType(self.manager.infos)

    @property
    def hooks(self) -> HookRelay:
        return self.manager.hooks

    @property
    def services(self) -> ServiceRegistry:
        return self.manager.services

    @property
    def routes(self) -> RouteTable:
        return self.manager.routes

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise KernelError("the kernel is not started; use 'async with Kernel(...)'")
        return self._storage

    # -- operations ----------------------------------------------------------------------

    async def reload(self, name: str) -> PluginInfo:
        """Load ``name`` afresh and swap it in; the old version keeps serving on failure."""
        return await self.manager.reload(name)

    async def rescan(self) -> dict[str, list[str]]:
        """Pick up plugins installed, upgraded or removed with pip since the start."""
        return await self.manager.rescan()

    async def install(
        self, spec: str, output: Callable[[str], None] = print
    ) -> dict[str, list[str]]:
        """``pip install SPEC`` into the kernel's environment, then rescan.

        pip's output goes line by line to ``output``; a failed install raises
        `PluginError` with pip's last lines and changes nothing.
        """
        await run_pip(["install", spec], output)
        return await self.rescan()

    async def uninstall(
        self, name: str, output: Callable[[str], None] = print
    ) -> dict[str, list[str]]:
        """``pip uninstall`` the distribution that provides plugin ``name``, then rescan."""
        rt = self.manager.runtime(name)
        dist = rt.candidate.distribution
        if rt.candidate.kind != "entrypoint" or dist is None:
            raise PluginError(
                f"plugin {name!r} comes from {rt.info.source}, not from a pip-installed "
                f"distribution; delete its file to remove it",
                plugin=name,
            )
        await run_pip(["uninstall", "--yes", dist], output)
        return await self.rescan()

    async def enable(self, name: str) -> PluginInfo:
        return await self.manager.enable(name)

    async def disable(self, name: str) -> PluginInfo:
        return await self.manager.disable(name)

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The effective ``[plugins.<name>]`` values of one plugin."""
        return self.manager.plugin_config(name)

    async def configure(self, name: str, values: dict[str, Any]) -> PluginInfo:
        """Validate and apply new configuration for ``name`` (restarting it); persisted."""
        return await self.manager.configure(name, values)

    async def health(self) -> dict[str, dict[str, Any]]:
        return await self.manager.health()

    def states(self) -> dict[str, PluginState]:
        return {name: info.state for name, info in self.manager.infos.items()}
