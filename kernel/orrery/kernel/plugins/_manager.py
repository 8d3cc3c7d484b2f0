"""The plugin manager: discovery, configuration, resolution, and every plugin's lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pluggy
from orrery.kernel.config import (
    OperatorChoices,
    OrreryConfig,
    plugin_section,
    validate_plugin_config,
)
from orrery.kernel.errors import DependencyError, PluginError, PluginNotFound
from orrery.sdk import Clock, ConfigError

from ._changes import CodeChanges
from ._hooks import HookRelay, new_pluggy_manager
from ._lifecycle import Lifecycle
from ._loading import PluginCandidate
from ._resolution import Declared, Resolution, resolve
from ._routes import RouteTable
from ._runtime import BusProvider, PluginRuntime, StorageProvider
from ._services import ServiceRegistry
from ._state import PluginInfo, PluginState

__all__ = ["PluginManager"]

log = logging.getLogger("orrery.kernel.plugins")
S = PluginState


class PluginManager:
    """Owns every plugin's lifecycle. Operations that change states hold ``lock``, so
    they run one at a time."""

    def __init__(
        self,
        *,
        node_id: str,
        config: OrreryConfig,
        plugins_dirs: Iterable[Path],
        entry_points: bool,
        plugin_classes: Iterable[type[Any]] = (),
        bus: BusProvider | None = None,
        storage: StorageProvider | None = None,
        choices: OperatorChoices | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.plugins_dirs = [Path(d) for d in plugins_dirs]
        self.entry_points = entry_points
        self.plugin_classes = list(plugin_classes)
        self.pm: pluggy.PluginManager = new_pluggy_manager()
        self.services = ServiceRegistry()
        self.routes = RouteTable()
        self.hooks = HookRelay(self.pm, config.kernel.hook_timeout)
        self.lifecycle = Lifecycle(
            node_id=node_id,
            config=config,
            pm=self.pm,
            services=self.services,
            routes=self.routes,
            bus=bus,
            storage=storage,
            clock=clock,
        )
        self.choices = choices or OperatorChoices()
        for name, values in self.choices.config.items():
            self.config.plugins[name] = dict(values)
        self.runtimes: dict[str, PluginRuntime] = {}
        self.resolution = Resolution(order=[], failures={}, dependencies={}, waves=[])
        self.lock = asyncio.Lock()
        self.changes = CodeChanges(self)

    # -- views ---------------------------------------------------------------------------

    @property
    def infos(self) -> dict[str, PluginInfo]:
        for rt in self.runtimes.values():
            self.lifecycle.refresh_info(rt)
        return {name: rt.info for name, rt in self.runtimes.items()}

    def runtime(self, name: str) -> PluginRuntime:
        try:
            return self.runtimes[name]
        except KeyError:
            raise PluginNotFound(name, list(self.runtimes)) from None

    # -- discovery, configuration, resolution --------------------------------------------

    def prepare(self, candidates: Iterable[PluginCandidate] | None = None) -> None:
        """Discover (unless given candidates), configure and resolve, starting nothing."""
        self.runtimes = {}
        for candidate in self.changes.discover() if candidates is None else candidates:
            self.add(candidate)
        self.resolve()
        known = {n.replace("-", "_") for n in self.runtimes}
        for name in sorted(set(self.config.plugins) - set(self.runtimes)):
            if name not in known:
                log.warning("config has [plugins.%s] but no such plugin was discovered", name)

    def add(self, candidate: PluginCandidate) -> PluginRuntime:
        """Track a new candidate (call `resolve` afterwards)."""
        name = candidate.name
        if name in self.runtimes and self.runtimes[name].info.state != S.UNINSTALLED:
            first = self.runtimes[name].info.source
            n = 2
            while f"{name}#{n}" in self.runtimes:
                n += 1
            message = (
                f"plugin name {name!r} from {candidate.source} is already used by {first}; "
                f'rename one of them (set name = "..." on the class)'
            )
            candidate.unload()
            candidate = PluginCandidate(
                name=f"{name}#{n}",
                source=candidate.source,
                kind=candidate.kind,
                path=candidate.path,
                error=message,
            )
            name = candidate.name
        info = PluginInfo(name=name, version=candidate.version, source=candidate.source)
        rt = PluginRuntime(info=info, candidate=candidate)
        self.runtimes[name] = rt
        self.configure_runtime(rt)
        return rt

    def configure_runtime(self, rt: PluginRuntime) -> None:
        """Validate the plugin's config section; a bad one becomes the candidate's error."""
        candidate, info = rt.candidate, rt.info
        rt.describe()
        spec = candidate.spec
        if spec is not None:
            try:
                rt.settings, rt.config = validate_plugin_config(
                    info.name,
                    spec.config_model,
                    plugin_section(self.config, info.name),
                    validated_elsewhere=spec.target is not None,
                )
            except ConfigError as e:
                candidate.error = str(e)
            else:
                info.enabled = rt.settings.enabled and info.name not in self.choices.disabled
                rt.describe()
        if candidate.error is not None:
            log.error("plugin %s failed: %s", info.name, candidate.error)

    def _declared(
        self, replacing: tuple[str, PluginCandidate] | None = None
    ) -> tuple[dict[str, Declared], dict[str, str]]:
        declared: dict[str, Declared] = {}
        broken: dict[str, str] = {}
        for name, rt in self.runtimes.items():
            candidate = rt.candidate
            if replacing is not None and replacing[0] == name:
                candidate = replacing[1]
            elif rt.info.state == S.UNINSTALLED:
                continue
            spec = candidate.spec
            if candidate.error is not None or spec is None:
                broken[name] = candidate.error or "failed"
            else:
                declared[name] = Declared(spec.version, spec.requires, spec.optional)
        return declared, broken

    def resolve(self) -> None:
        """(Re)compute the start order. Plugins that are running, or that failed in their
        own start, keep their state; every other state follows from the resolution."""
        declared, broken = self._declared()
        self.resolution = resolve(declared, broken)
        for name, rt in self.runtimes.items():
            info = rt.info
            if info.state in (S.ACTIVE, S.STARTING, S.STOPPING, S.UNINSTALLED):
                continue
            failure = self.resolution.failures.get(name)
            if failure is not None:
                if (info.state, info.error) == (S.FAILED, str(failure)):
                    continue
                if name not in broken:
                    log.error("plugin %s failed: %s", name, failure)
                self.lifecycle.transition(rt, S.FAILED, str(failure))
                rt.resolution_failed = True
            elif rt.resolution_failed or info.state == S.DISCOVERED:
                self.lifecycle.transition(rt, S.RESOLVED)
                rt.resolution_failed = False

    def replacement_problem(self, name: str, fresh: PluginCandidate) -> str | None:
        """Why swapping ``fresh`` in for running plugin ``name`` would break a
        requirement — its own, or an active dependent's — or None when it would not."""
        declared, broken = self._declared(replacing=(name, fresh))
        failures = resolve(declared, broken).failures
        own = failures.get(name)
        if own is not None:
            return str(own)
        for other, failure in sorted(failures.items()):
            rt = self.runtimes[other]
            if rt.info.state == S.ACTIVE and name in failure.chain:
                return str(failure)
        return None

    # -- lifecycle -----------------------------------------------------------------------

    async def start_all(self) -> None:
        """Start every enabled, resolved plugin, wave by wave in dependency order."""
        async with self.lock:
            await self.lifecycle.flush()
            for wave in self.resolution.waves:
                await asyncio.gather(*(self.start_if_ready(name) for name in wave))

    async def stop_all(self) -> None:
        """Stop every active plugin in reverse dependency order, then forget the
        modules of folder plugins (another kernel in this process loads its own)."""
        async with self.lock:
            for name in reversed(self.resolution.order):
                rt = self.runtimes.get(name)
                if rt is not None and rt.info.state == S.ACTIVE:
                    await self.lifecycle.stop(rt)
            for rt in self.runtimes.values():
                rt.candidate.unload()
            await self.lifecycle.flush()

    async def start_if_ready(self, name: str) -> bool:
        """Start ``name`` if it is enabled and every plugin it requires is active."""
        rt = self.runtimes[name]
        await self.lifecycle.flush()
        if rt.info.state == S.ACTIVE or not rt.info.enabled or rt.candidate.spec is None:
            return rt.info.state == S.ACTIVE
        if rt.resolution_failed or rt.info.state == S.UNINSTALLED:
            # Every path into the kernel (start-up, folder, rescan, enable) goes through
            # resolution: a plugin whose requires are unmet never starts.
            return False
        for dep in self.resolution.dependencies.get(name, ()):
            dep_info = self.runtimes[dep].info
            if dep_info.state == S.ACTIVE or dep not in rt.info.requires:
                continue
            if dep_info.state == S.FAILED:
                error = DependencyError(
                    f"plugin {name!r} requires {dep!r}, which failed: {dep_info.error}",
                    plugin=name,
                    chain=(name, dep),
                )
                await self.lifecycle.mark(rt, S.FAILED, str(error))
            else:
                log.info("plugin %s waits: it requires %s, which is %s", name, dep, dep_info.state)
            return False
        return await self.lifecycle.start(rt)

    async def start_with_dependents(self, name: str) -> None:
        if await self.start_if_ready(name):
            for dependent in self.resolution.dependents(name):
                await self.start_if_ready(dependent)

    async def stop_with_dependents(self, name: str, *, final_state: PluginState) -> list[str]:
        """Stop the active plugins that require ``name`` (last first), then ``name``;
        returns the dependents stopped, in start order."""
        stopped = []
        for dependent in reversed(self.resolution.dependents(name)):
            drt = self.runtimes[dependent]
            if drt.info.state == S.ACTIVE and name in self._requires_closure(dependent):
                await self.lifecycle.stop(drt, final_state=S.RESOLVED)
                stopped.append(dependent)
        rt = self.runtimes[name]
        if rt.info.state == S.ACTIVE:
            await self.lifecycle.stop(rt, final_state=final_state)
        return stopped[::-1]

    def _requires_closure(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for dep in self.runtimes[todo.pop()].info.requires:
                if dep not in seen and dep in self.runtimes:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    # -- runtime operations --------------------------------------------------------------

    async def enable(self, name: str) -> PluginInfo:
        """Enable and start ``name``, then the dependents that were waiting for it."""
        async with self.lock:
            rt = self.runtime(name)
            rt.info.enabled = True
            if name in self.choices.disabled:
                self.choices.disabled.discard(name)
                await self.choices.save()
            await self.start_with_dependents(name)
            return rt.info

    async def disable(self, name: str) -> PluginInfo:
        """Stop ``name`` (dependents first) and keep it stopped across restarts."""
        async with self.lock:
            rt = self.runtime(name)
            await self.stop_with_dependents(name, final_state=S.STOPPED)
            rt.info.enabled = False
            self.choices.disabled.add(name)
            await self.choices.save()
            return rt.info

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
        async with self.lock:
            rt = self.runtime(name)
            spec = rt.candidate.spec
            if spec is None:
                raise PluginError(
                    f"plugin {name!r} cannot be configured: {rt.info.error}", plugin=name
                )
            settings, config = validate_plugin_config(
                name, spec.config_model, values, validated_elsewhere=spec.target is not None
            )
            self.config.plugins[name] = dict(values)
            self.choices.config[name] = dict(values)
            await self.choices.save()
            dependents = await self.stop_with_dependents(name, final_state=S.RESOLVED)
            rt.settings, rt.config = settings, config
            rt.info.enabled = settings.enabled and name not in self.choices.disabled
            if rt.info.state == S.FAILED and not rt.resolution_failed:
                await self.lifecycle.mark(rt, S.RESOLVED)
            if rt.info.enabled and await self.start_if_ready(name):
                for dependent in dependents:
                    await self.start_if_ready(dependent)
            return rt.info

    async def reload(self, name: str) -> PluginInfo:
        """Load ``name``'s code afresh and swap it in.

        Raises `PluginError` saying why when the new version was rejected; the old
        version then keeps serving, and ``orrery.plugin.reload_failed`` is published.
        """
        async with self.lock:
            rt = self.runtime(name)
            return await self.apply(rt, await self.changes.reimport(rt))

    async def sync_path(self, path: Path) -> PluginInfo | None:
        """Load, reload or uninstall the folder plugin at ``path``; see `CodeChanges`."""
        return await self.changes.sync_path(path)

    async def rescan(self) -> dict[str, list[str]]:
        """Pick up entry-point plugins installed, upgraded or removed since the start."""
        return await self.changes.rescan()

    # -- code changes (called with ``lock`` held) ----------------------------------------

    async def apply(self, rt: PluginRuntime, fresh: PluginCandidate) -> PluginInfo:
        """Make ``fresh`` the code of ``rt``: swapped in when active (raising
        `PluginError` if rejected, the old version serving on), otherwise re-resolved
        and started if it can be."""
        if rt.info.state != S.ACTIVE:
            # Nothing is serving, so there is nothing to hand over: take the new code,
            # re-resolve (it may now satisfy its dependents) and try to start it.
            rt.candidate.unload()
            fresh.name = rt.name
            rt.candidate = fresh
            self.configure_runtime(rt)
            if rt.info.state == S.FAILED and not rt.resolution_failed:
                await self.lifecycle.mark(rt, S.RESOLVED)
            self.resolve()
            await self.start_with_dependents(rt.name)
            return rt.info
        problem = self.replacement_problem(rt.name, fresh) if fresh.spec is not None else None
        if problem is not None:
            fresh.error = problem
        await self.lifecycle.swap(rt, fresh)
        self.configure_runtime(rt)
        self.resolve()
        await self.start_waiting()
        return rt.info

    async def install(
        self, candidate: PluginCandidate, *, replacing: PluginRuntime | None = None
    ) -> PluginInfo:
        """Track a newly found plugin, resolve, and start it (and whatever waited for it)."""
        if replacing is not None and self.runtimes.get(replacing.name) is replacing:
            del self.runtimes[replacing.name]
        rt = self.add(candidate)
        self.resolve()
        log.info("discovered %s %s at %s", rt.name, rt.info.version, rt.info.source)
        await self.start_with_dependents(rt.name)
        await self.start_waiting()
        return rt.info

    async def start_waiting(self) -> None:
        """Start the resolved plugins that can start now (their requirement appeared)."""
        for name in self.resolution.order:
            rt = self.runtimes[name]
            if rt.info.state == S.RESOLVED and rt.info.enabled:
                await self.start_if_ready(name)
        await self.lifecycle.flush()

    async def uninstall(self, rt: PluginRuntime) -> None:
        """Stop ``rt`` (dependents first) and mark it uninstalled."""
        await self.stop_with_dependents(rt.name, final_state=S.UNINSTALLED)
        if rt.info.state != S.UNINSTALLED:
            await self.lifecycle.mark(rt, S.UNINSTALLED)
        rt.candidate.unload()
        self.resolve()
        await self.lifecycle.flush()
        log.info("uninstalled %s", rt.name)

    async def health(self) -> dict[str, dict[str, Any]]:
        """Each active plugin's ``orrery_health`` answer (``{"ok": True}`` when it has none)."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.resolution.order:
            rt = self.runtimes[name]
            if rt.info.state == S.ACTIVE and rt.instance is not None:
                out[name] = await self.lifecycle.health(rt)
        return out
