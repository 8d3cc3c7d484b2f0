"""The plugin manager: discovery, configuration, resolution and the lifecycle of every plugin."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pluggy

from orrery.sdk import Bus, ConfigError, Journal, Plugin, Store

from .._choices import OperatorChoices
from .._config import OrreryConfig, PluginSettings, plugin_section, validate_plugin_config
from ..errors import DependencyError, PluginError, PluginNotFound
from ._context import KernelContext, ReleasableBus
from ._hooks import NOT_IMPLEMENTED, HookRelay, call_plugin_hook, new_pluggy_manager
from ._loading import (
    PluginCandidate,
    discover_entry_points,
    discover_folder,
    load_folder_plugin,
)
from ._resolution import Declared, Resolution, resolve
from ._routes import PluginRoutes, RouteTable
from ._services import PluginServices, ServiceRegistry
from ._state import PluginInfo, PluginState

__all__ = ["PluginManager", "PluginRuntime", "StorageProvider"]

log = logging.getLogger("orrery.kernel.plugins")
S = PluginState


class BusProvider(Protocol):
    def client(self, source: str) -> ReleasableBus: ...


class StorageProvider(Protocol):
    def store(self, namespace: str) -> Store: ...

    def journal(self, namespace: str | None = None) -> Journal: ...


@dataclass(eq=False)
class PluginRuntime:
    """One plugin as the manager tracks it: where it came from and, when active, its
    instance and Context."""

    info: PluginInfo
    candidate: PluginCandidate
    settings: PluginSettings | None = None
    config: Any = None
    instance: Plugin | None = None
    ctx: KernelContext | None = None
    #: The FAILED state came from resolution (recomputed), not from the plugin's own start.
    resolution_failed: bool = False


class PluginManager:
    """Owns every plugin's lifecycle; lifecycle operations run one at a time."""

    def __init__(
        self,
        *,
        node_id: str,
        config: OrreryConfig,
        plugins_dirs: Iterable[Path],
        entry_points: bool,
        bus: BusProvider | None = None,
        storage: StorageProvider | None = None,
        choices: OperatorChoices | None = None,
    ) -> None:
        self.node_id = node_id
        self.config = config
        self.plugins_dirs = [Path(d) for d in plugins_dirs]
        self.entry_points = entry_points
        self.pm: pluggy.PluginManager = new_pluggy_manager()
        self.services = ServiceRegistry()
        self.routes = RouteTable()
        self.hooks = HookRelay(self.pm, config.kernel.hook_timeout)
        self._bus = bus
        self._storage = storage
        self._events: Bus | None = bus.client(f"orrery://{node_id}/kernel") if bus else None
        self.choices = choices or OperatorChoices()
        for name, values in self.choices.config.items():
            self.config.plugins[name] = dict(values)
        self._runtimes: dict[str, PluginRuntime] = {}
        self._resolution = Resolution(order=[], failures={}, dependencies={}, waves=[])
        self._lock = asyncio.Lock()

    # -- views ---------------------------------------------------------------------------

    @property
    def infos(self) -> dict[str, PluginInfo]:
        return {name: rt.info for name, rt in self._runtimes.items()}

    def runtime(self, name: str) -> PluginRuntime:
        try:
            return self._runtimes[name]
        except KeyError:
            raise PluginNotFound(name, list(self._runtimes)) from None

    @property
    def order(self) -> list[str]:
        return list(self._resolution.order)

    # -- discovery, configuration, resolution --------------------------------------------

    def discover(self) -> list[PluginCandidate]:
        candidates: list[PluginCandidate] = []
        if self.entry_points:
            candidates += discover_entry_points()
        for folder in self.plugins_dirs:
            if not folder.is_dir():
                log.warning("plugin folder %s does not exist; skipping it", folder)
                continue
            candidates += discover_folder(folder)
        return candidates

    def prepare(self, candidates: Iterable[PluginCandidate] | None = None) -> None:
        """Discover (unless given candidates), configure and resolve, starting nothing."""
        self._runtimes = {}
        for candidate in self.discover() if candidates is None else candidates:
            self._add(candidate)
        self._resolve()

    def _add(self, candidate: PluginCandidate) -> PluginRuntime:
        name = candidate.name
        if name in self._runtimes:
            first = self._runtimes[name].info.source
            n = 2
            while f"{name}#{n}" in self._runtimes:
                n += 1
            message = (
                f"plugin name {name!r} from {candidate.source} is already used by {first}; "
                f"rename one of them (set name = \"...\" on the class)"
            )
            candidate.unload()
            candidate = PluginCandidate(
                name=f"{name}#{n}", source=candidate.source, kind=candidate.kind, error=message
            )
            name = candidate.name
        info = PluginInfo(name=name, version=candidate.version, source=candidate.source)
        rt = PluginRuntime(info=info, candidate=candidate)
        self._runtimes[name] = rt
        self._configure(rt)
        return rt

    def _configure(self, rt: PluginRuntime) -> None:
        """Validate the plugin's config section; a bad one becomes the candidate's error."""
        candidate, info = rt.candidate, rt.info
        self._configure_info(rt)
        if candidate.spec is not None:
            spec = candidate.spec
            try:
                rt.settings, rt.config = validate_plugin_config(
                    info.name, spec.config_model, plugin_section(self.config, info.name)
                )
            except ConfigError as e:
                candidate.error = str(e)
            else:
                info.enabled = rt.settings.enabled and info.name not in self.choices.disabled
                info.sandbox = spec.sandbox or bool(rt.settings.sandbox)
        if candidate.error is not None:
            log.error("plugin %s failed: %s", info.name, candidate.error)

    @staticmethod
    def _configure_info(rt: PluginRuntime) -> None:
        rt.info.version = rt.candidate.version
        spec = rt.candidate.spec
        if spec is not None:
            rt.info.requires = {k: str(v) for k, v in spec.requires.items()}
            rt.info.optional = {k: str(v) for k, v in spec.optional.items()}

    def _resolve(self) -> None:
        """(Re)compute the start order. Plugins that are running, or that failed in their
        own start, keep their state; every other state follows from the resolution."""
        declared: dict[str, Declared] = {}
        broken: dict[str, str] = {}
        for name, rt in self._runtimes.items():
            spec = rt.candidate.spec
            if rt.candidate.error is not None or spec is None:
                broken[name] = rt.candidate.error or "failed"
            else:
                declared[name] = Declared(spec.version, spec.requires, spec.optional)
        self._resolution = resolve(declared, broken)
        for name, rt in self._runtimes.items():
            info = rt.info
            if info.state in (S.ACTIVE, S.STARTING, S.STOPPING, S.UNINSTALLED):
                continue
            failure = self._resolution.failures.get(name)
            if failure is not None:
                if info.state != S.FAILED and name not in broken:
                    log.error("plugin %s failed: %s", name, failure)
                info.state, info.error = S.FAILED, str(failure)
                rt.resolution_failed = True
            elif rt.resolution_failed or info.state == S.DISCOVERED:
                info.state, info.error = S.RESOLVED, None
                rt.resolution_failed = False
        known = {n.replace("-", "_") for n in self._runtimes}
        for name in sorted(set(self.config.plugins) - set(self._runtimes)):
            if name not in known:
                log.warning("config has [plugins.%s] but no such plugin was discovered", name)

    # -- lifecycle -----------------------------------------------------------------------

    async def start_all(self) -> None:
        """Start every enabled, resolved plugin, wave by wave in dependency order."""
        async with self._lock:
            for wave in self._resolution.waves:
                await asyncio.gather(*(self._start_if_ready(name) for name in wave))

    async def stop_all(self) -> None:
        """Stop every active plugin in reverse dependency order."""
        async with self._lock:
            for name in reversed(self._resolution.order):
                rt = self._runtimes.get(name)
                if rt is not None and rt.info.state == S.ACTIVE:
                    await self._stop(rt)

    async def _start_if_ready(self, name: str, *, restore: dict[str, Any] | None = None) -> bool:
        rt = self._runtimes[name]
        if rt.info.state == S.ACTIVE or not rt.info.enabled:
            return rt.info.state == S.ACTIVE
        for dep in self._resolution.dependencies.get(name, ()):
            dep_info = self._runtimes[dep].info
            required = dep in rt.info.requires
            if dep_info.state == S.ACTIVE or not required:
                continue
            if dep_info.state == S.FAILED:
                error = DependencyError(
                    f"plugin {name!r} requires {dep!r}, which failed: {dep_info.error}",
                    plugin=name,
                    chain=(name, dep),
                )
                await self._set_state(rt, S.FAILED, str(error))
            else:
                log.info("plugin %s waits: it requires %s, which is %s", name, dep, dep_info.state)
            return False
        return await self._start(rt, restore=restore)

    async def _start(self, rt: PluginRuntime, *, restore: dict[str, Any] | None = None) -> bool:
        spec = rt.candidate.spec
        assert spec is not None and rt.settings is not None
        name = rt.info.name
        began = time.perf_counter()
        await self._set_state(rt, S.STARTING, None)
        timeout = rt.settings.start_timeout or self.config.kernel.start_timeout
        instance: Plugin | None = None
        ctx: KernelContext | None = None
        try:
            instance = spec.plugin_class()
            ctx = self._context(rt)
            self.pm.register(instance, name=name)
            if restore is not None:
                await call_plugin_hook(
                    self.pm, instance, "orrery_restore", plugin=name, timeout=timeout,
                    ctx=ctx, state=restore,
                )
            await call_plugin_hook(
                self.pm, instance, "orrery_start", plugin=name, timeout=timeout, ctx=ctx
            )
        except Exception as e:
            await self._discard(instance, ctx)
            error = e if isinstance(e, PluginError) else PluginError(
                f"plugin {name!r} could not start: {type(e).__name__}: {e}", plugin=name
            )
            log.error("plugin %s failed to start: %s", name, error, exc_info=e.__cause__ or e)
            await self._set_state(rt, S.FAILED, str(error))
            return False
        except asyncio.CancelledError:
            await self._discard(instance, ctx)
            await self._set_state(rt, S.STOPPED, "start was cancelled")
            raise
        rt.instance, rt.ctx = instance, ctx
        await self._set_state(rt, S.ACTIVE, None)
        log.info(
            "started %s %s from %s in %.1f ms",
            name, rt.info.version, rt.info.source, (time.perf_counter() - began) * 1000,
        )
        return True

    async def _discard(self, instance: Plugin | None, ctx: KernelContext | None) -> None:
        if instance is not None and self.pm.is_registered(instance):
            self.pm.unregister(instance)
        if ctx is not None:
            await ctx.release(self.config.kernel.stop_timeout)

    async def _stop(self, rt: PluginRuntime, *, final_state: PluginState = S.STOPPED) -> None:
        name = rt.info.name
        assert rt.instance is not None and rt.ctx is not None and rt.settings is not None
        await self._set_state(rt, S.STOPPING, None)
        timeout = rt.settings.stop_timeout or self.config.kernel.stop_timeout
        error: str | None = None
        try:
            await call_plugin_hook(
                self.pm, rt.instance, "orrery_stop", plugin=name, timeout=timeout, ctx=rt.ctx
            )
        except PluginError as e:
            # Stopping goes on regardless: the kernel still releases what the plugin holds.
            error = str(e)
            log.warning("plugin %s did not stop cleanly: %s", name, e)
        finally:
            await self._discard(rt.instance, rt.ctx)
            rt.instance = rt.ctx = None
        await self._set_state(rt, final_state, error)
        log.info("stopped %s", name)

    def _context(self, rt: PluginRuntime) -> KernelContext:
        name = rt.info.name
        if self._bus is None or self._storage is None:
            raise PluginError(f"plugin {name!r}: the kernel is not running", plugin=name)
        storage = self._storage
        return KernelContext(
            name=name,
            config=rt.config,
            bus=self._bus.client(f"orrery://{self.node_id}/{name}"),
            services=PluginServices(self.services, name),
            routes=PluginRoutes(self.routes, name),
            store=storage.store(name),
            journal_factory=lambda: storage.journal(name),
        )

    async def _set_state(self, rt: PluginRuntime, state: PluginState, error: str | None) -> None:
        rt.info.state = state
        rt.info.error = error
        if self._events is not None:
            await self._events.publish(
                f"orrery.plugin.{state}",
                {
                    "name": rt.info.name,
                    "version": rt.info.version,
                    "state": str(state),
                    "error": error,
                    "source": rt.info.source,
                },
                key=rt.info.name,
            )

    # -- runtime operations --------------------------------------------------------------

    async def enable(self, name: str) -> PluginInfo:
        """Enable and start ``name``, then the dependents that were waiting for it."""
        async with self._lock:
            rt = self.runtime(name)
            rt.info.enabled = True
            if name in self.choices.disabled:
                self.choices.disabled.discard(name)
                await self.choices.save()
            if rt.info.state == S.FAILED and rt.candidate.spec is None:
                return rt.info
            if await self._start_if_ready(name):
                for dependent in self._resolution.dependents(name):
                    await self._start_if_ready(dependent)
            return rt.info

    async def disable(self, name: str) -> PluginInfo:
        """Stop ``name`` (dependents first) and keep it stopped across restarts."""
        async with self._lock:
            rt = self.runtime(name)
            for dependent in reversed(self._resolution.dependents(name)):
                drt = self._runtimes[dependent]
                if drt.info.state == S.ACTIVE and name in self._requires_closure(dependent):
                    await self._stop(drt, final_state=S.RESOLVED)
            if rt.info.state == S.ACTIVE:
                await self._stop(rt)
            rt.info.enabled = False
            self.choices.disabled.add(name)
            await self.choices.save()
            return rt.info

    def _requires_closure(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for dep in self._runtimes[todo.pop()].info.requires:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def plugin_config(self, name: str) -> dict[str, Any]:
        """The plugin's effective configuration: its validated Config plus kernel keys."""
        rt = self.runtime(name)
        values: dict[str, Any] = dict(plugin_section(self.config, name))
        if rt.config is not None and hasattr(rt.config, "model_dump"):
            values.update(rt.config.model_dump(mode="json"))
        return values

    async def configure(self, name: str, values: dict[str, Any]) -> PluginInfo:
        """Validate and apply new ``[plugins.<name>]`` values, restarting the plugin (and
        its dependents) when it is active. Persisted across restarts.

        Raises `ConfigError` naming the field when ``values`` are invalid; nothing changes then.
        """
        async with self._lock:
            rt = self.runtime(name)
            spec = rt.candidate.spec
            if spec is None:
                raise PluginError(f"plugin {name!r} cannot be configured: {rt.info.error}", plugin=name)
            settings, config = validate_plugin_config(name, spec.config_model, values)
            self.config.plugins[name] = dict(values)
            self.choices.config[name] = dict(values)
            await self.choices.save()
            dependents = [
                d for d in self._resolution.dependents(name)
                if self._runtimes[d].info.state == S.ACTIVE
            ]
            was_active = rt.info.state == S.ACTIVE
            if was_active:
                for dependent in reversed(dependents):
                    await self._stop(self._runtimes[dependent], final_state=S.RESOLVED)
                await self._stop(rt, final_state=S.RESOLVED)
            rt.settings, rt.config = settings, config
            rt.info.enabled = settings.enabled and name not in self.choices.disabled
            if rt.info.state == S.FAILED and not rt.resolution_failed:
                rt.info.state, rt.info.error = S.RESOLVED, None
            if rt.info.enabled and await self._start_if_ready(name):
                for dependent in dependents:
                    await self._start_if_ready(dependent)
            return rt.info

    async def reload(self, name: str) -> PluginInfo:
        """Load ``name``'s code afresh and swap it in; on failure the old version keeps running.

        Raises `PluginError` saying why when the new version was rejected.
        """
        async with self._lock:
            rt = self.runtime(name)
            fresh = self._reimport(rt)
            if rt.info.state != S.ACTIVE:
                return await self._replace_inactive(rt, fresh)
            if fresh.error is not None or fresh.spec is None:
                fresh.unload()
                raise PluginError(
                    f"reload of {name!r} failed, old version kept: {fresh.error}", plugin=name
                )
            if fresh.spec.name != name:
                fresh.unload()
                raise PluginError(
                    f"reload of {name!r} failed: the new code is named {fresh.spec.name!r}; "
                    f"a rename is a new plugin, so restart the kernel instead",
                    plugin=name,
                )
            return await self._swap(rt, fresh)

    def _reimport(self, rt: PluginRuntime) -> PluginCandidate:
        candidate = rt.candidate
        if candidate.kind == "folder" and candidate.path is not None:
            return load_folder_plugin(candidate.path)
        for fresh in discover_entry_points():
            if fresh.name == rt.info.name:
                return fresh
        return PluginCandidate(
            name=rt.info.name,
            source=candidate.source,
            kind=candidate.kind,
            error="its entry point is gone; the distribution was uninstalled",
        )

    async def _replace_inactive(self, rt: PluginRuntime, fresh: PluginCandidate) -> PluginInfo:
        # Nothing is serving, so there is nothing to roll back to: take the new code,
        # re-resolve (it may now satisfy its dependents) and try to start it.
        name = rt.info.name
        rt.candidate.unload()
        fresh.name = name
        rt.candidate = fresh
        self._configure(rt)
        if rt.info.state == S.FAILED and not rt.resolution_failed:
            rt.info.state, rt.info.error = S.RESOLVED, None
        self._resolve()
        if await self._start_if_ready(name):
            for dependent in self._resolution.dependents(name):
                await self._start_if_ready(dependent)
        return rt.info

    async def _swap(self, rt: PluginRuntime, fresh: PluginCandidate) -> PluginInfo:
        """Snapshot, stop (dependents first), start the new version with the snapshot,
        restart dependents; if the new version fails to start, restore the old one."""
        name = rt.info.name
        spec = fresh.spec
        assert spec is not None and rt.instance is not None
        try:
            settings, config = validate_plugin_config(
                name, spec.config_model, plugin_section(self.config, name)
            )
        except ConfigError as e:
            fresh.unload()
            raise PluginError(
                f"reload of {name!r} failed, old version kept: {e}", plugin=name
            ) from e
        snapshot = await call_plugin_hook(
            self.pm, rt.instance, "orrery_snapshot", plugin=name,
            timeout=self.config.kernel.hook_timeout, ctx=rt.ctx,
        )
        state = None if snapshot is NOT_IMPLEMENTED else snapshot
        dependents = [
            d for d in self._resolution.dependents(name)
            if self._runtimes[d].info.state == S.ACTIVE
        ]
        for dependent in reversed(dependents):
            await self._stop(self._runtimes[dependent], final_state=S.RESOLVED)
        await self._stop(rt, final_state=S.RESOLVED)
        old = (rt.candidate, rt.settings, rt.config)
        rt.candidate, rt.settings, rt.config = fresh, settings, config
        self._configure_info(rt)
        if not await self._start(rt, restore=state):
            reason = rt.info.error
            fresh.unload()
            rt.candidate, rt.settings, rt.config = old
            self._configure_info(rt)
            await self._start(rt, restore=state)
            for dependent in dependents:
                await self._start_if_ready(dependent)
            raise PluginError(
                f"reload of {name!r} failed, old version restored: {reason}", plugin=name
            )
        old[0].unload()
        for dependent in dependents:
            await self._start_if_ready(dependent)
        log.info("reloaded %s %s", name, rt.info.version)
        return rt.info

    # -- health --------------------------------------------------------------------------

    async def health(self) -> dict[str, dict[str, Any]]:
        """Each active plugin's ``orrery_health`` answer (``{"ok": True}`` when it has none)."""
        out: dict[str, dict[str, Any]] = {}
        for name in self._resolution.order:
            rt = self._runtimes[name]
            if rt.info.state != S.ACTIVE or rt.instance is None:
                continue
            try:
                answer = await call_plugin_hook(
                    self.pm, rt.instance, "orrery_health", plugin=name,
                    timeout=self.config.kernel.hook_timeout, ctx=rt.ctx,
                )
            except PluginError as e:
                out[name] = {"ok": False, "error": str(e)}
                continue
            out[name] = {"ok": True} if answer is NOT_IMPLEMENTED else dict(answer)
        return out
