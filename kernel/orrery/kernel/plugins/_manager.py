"""The plugin manager: discovery, configuration, resolution, and every plugin's lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pluggy
from orrery.kernel._choices import OperatorChoices
from orrery.kernel._config import OrreryConfig, plugin_section, validate_plugin_config
from orrery.kernel.errors import DependencyError, PluginError, PluginNotFound
from orrery.sdk import Clock, ConfigError

from ._hooks import HookRelay, new_pluggy_manager
from ._lifecycle import Lifecycle
from ._loading import PluginCandidate, class_candidate, discover_entry_points, discover_folder
from ._reload import Reloader
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
        self.reloader = Reloader(self)

    # -- views ---------------------------------------------------------------------------

    @property
    def infos(self) -> dict[str, PluginInfo]:
        for rt in self.runtimes.values():
            self.lifecycle.refresh_sandbox_info(rt)
        return {name: rt.info for name, rt in self.runtimes.items()}

    def runtime(self, name: str) -> PluginRuntime:
        try:
            return self.runtimes[name]
        except KeyError:
            raise PluginNotFound(name, list(self.runtimes)) from None

    # -- discovery, configuration, resolution --------------------------------------------

    def discover(self) -> list[PluginCandidate]:
        candidates = [class_candidate(cls) for cls in self.plugin_classes]
        if self.entry_points:
            candidates += discover_entry_points(self.sandbox_forced)
        for folder in self.plugins_dirs:
            if not folder.is_dir():
                log.warning("plugin folder %s does not exist; skipping it", folder)
                continue
            candidates += discover_folder(folder, self.sandbox_forced)
        return candidates

    def sandbox_forced(self, name: str) -> bool:
        """Whether ``[plugins.<name>] sandbox`` puts the plugin in the sandbox."""
        return bool(plugin_section(self.config, name).get("sandbox"))

    def prepare(self, candidates: Iterable[PluginCandidate] | None = None) -> None:
        """Discover (unless given candidates), configure and resolve, starting nothing."""
        self.runtimes = {}
        for candidate in self.discover() if candidates is None else candidates:
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
        info.version = candidate.version
        info.source = candidate.source
        spec = candidate.spec
        if spec is not None:
            info.requires = {k: str(v) for k, v in spec.requires.items()}
            info.optional = {k: str(v) for k, v in spec.optional.items()}
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
                info.sandbox = spec.sandbox or bool(rt.settings.sandbox)
        if candidate.error is not None:
            log.error("plugin %s failed: %s", info.name, candidate.error)

    def resolve(self) -> None:
        """(Re)compute the start order. Plugins that are running, or that failed in their
        own start, keep their state; every other state follows from the resolution."""
        declared: dict[str, Declared] = {}
        broken: dict[str, str] = {}
        for name, rt in self.runtimes.items():
            spec = rt.candidate.spec
            if rt.info.state == S.UNINSTALLED:
                continue
            if rt.candidate.error is not None or spec is None:
                broken[name] = rt.candidate.error or "failed"
            else:
                declared[name] = Declared(spec.version, spec.requires, spec.optional)
        self.resolution = resolve(declared, broken)
        for name, rt in self.runtimes.items():
            info = rt.info
            if info.state in (S.ACTIVE, S.STARTING, S.STOPPING, S.UNINSTALLED):
                continue
            failure = self.resolution.failures.get(name)
            if failure is not None:
                if info.state != S.FAILED and name not in broken:
                    log.error("plugin %s failed: %s", name, failure)
                info.state, info.error = S.FAILED, str(failure)
                rt.resolution_failed = True
            elif rt.resolution_failed or info.state == S.DISCOVERED:
                info.state, info.error = S.RESOLVED, None
                rt.resolution_failed = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start_all(self) -> None:
        """Start every enabled, resolved plugin, wave by wave in dependency order."""
        async with self.lock:
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

    async def start_if_ready(self, name: str) -> bool:
        """Start ``name`` if it is enabled and every plugin it requires is active."""
        rt = self.runtimes[name]
        if rt.info.state == S.ACTIVE or not rt.info.enabled or rt.candidate.spec is None:
            return rt.info.state == S.ACTIVE
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
                await self.lifecycle.set_state(rt, S.FAILED, str(error))
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
                rt.info.state, rt.info.error = S.RESOLVED, None
            if rt.info.enabled and await self.start_if_ready(name):
                for dependent in dependents:
                    await self.start_if_ready(dependent)
            return rt.info

    async def reload(self, name: str) -> PluginInfo:
        """Swap in ``name``'s current code; see `Reloader.reload`."""
        return await self.reloader.reload(name)

    async def sync_path(self, path: Path) -> PluginInfo | None:
        """Load, reload or uninstall the folder plugin at ``path``; see `Reloader.sync_path`."""
        return await self.reloader.sync_path(path)

    async def rescan(self) -> dict[str, list[str]]:
        """Pick up entry-point plugins installed, upgraded or removed since the start."""
        return await self.reloader.rescan()

    async def health(self) -> dict[str, dict[str, Any]]:
        """Each active plugin's ``orrery_health`` answer (``{"ok": True}`` when it has none)."""
        out: dict[str, dict[str, Any]] = {}
        for name in self.resolution.order:
            rt = self.runtimes[name]
            if rt.info.state == S.ACTIVE and rt.instance is not None:
                out[name] = await self.lifecycle.health(rt)
        return out
