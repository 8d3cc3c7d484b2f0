"""Changing a running plugin's code: hot swap, plugin-folder changes, entry-point rescans.

A swap never loses an event. The old instance is *held* (its subscriptions keep
queueing, nothing is handled) and snapshotted; the new instance is restored and started
*staged* (its subscriptions, services and routes are not visible yet) while the old one
keeps its place. Then, in one step with no await in between, the new subscriptions take
over and inherit what the old ones had queued, and the new services and routes replace
the old. Only then does the old instance stop. If anything before that step fails, the
old instance resumes exactly where it was held.

Dependents are not restarted: they reach services through live handles that follow the
provider (see `ServiceHandle`), and their own subscriptions are untouched.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from orrery.kernel._config import plugin_section, validate_plugin_config
from orrery.kernel.errors import PluginError
from orrery.sdk import ConfigError

from ._loading import (
    PluginCandidate,
    distribution_version,
    entry_points,
    folder_entries,
    forget_entry_point_modules,
    load_entry_point,
    load_folder_plugin,
)
from ._runtime import PluginRuntime
from ._state import PluginInfo, PluginState

if TYPE_CHECKING:
    from ._manager import PluginManager

__all__ = ["Reloader"]

log = logging.getLogger("orrery.kernel.reload")
S = PluginState


class Reloader:
    """Applies code changes to a `PluginManager`'s plugins."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager
        self.lifecycle = manager.lifecycle

    # -- one plugin ----------------------------------------------------------------------

    async def reload(self, name: str) -> PluginInfo:
        """Load ``name``'s code afresh and swap it in.

        Raises `PluginError` saying why when the new version was rejected; the old
        version then keeps serving, and ``orrery.plugin.reload_failed`` is published.
        """
        async with self.manager.lock:
            return await self._reload(self.manager.runtime(name))

    async def _reload(self, rt: PluginRuntime) -> PluginInfo:
        fresh = self._reimport(rt)
        if rt.info.state != S.ACTIVE:
            return await self._replace_inactive(rt, fresh)
        try:
            return await self._swap(rt, fresh)
        except PluginError as e:
            fresh.unload()
            rt.info.error = str(e)
            log.error("%s", e)
            await self.lifecycle.announce(rt, "reload_failed", str(e))
            raise
        except BaseException:
            # Cancelled mid-swap (kernel stopping): the old version is still in place.
            if rt.candidate is not fresh:
                fresh.unload()
            raise

    def _reimport(self, rt: PluginRuntime) -> PluginCandidate:
        candidate = rt.candidate
        if candidate.kind == "folder" and candidate.path is not None:
            return load_folder_plugin(candidate.path, self.manager.sandbox_forced)
        if candidate.kind == "class":
            return PluginCandidate(
                name=rt.name,
                source=candidate.source,
                kind="class",
                error="it was given to the kernel as a class, so there is no code to re-read",
            )
        for ep in entry_points():
            if ep.value == candidate.entry_point or ep.name == rt.name:
                forget_entry_point_modules(ep.value)
                return load_entry_point(ep, self.manager.sandbox_forced)
        return PluginCandidate(
            name=rt.name,
            source=candidate.source,
            kind=candidate.kind,
            error="its entry point is gone; the distribution was uninstalled",
        )

    async def _replace_inactive(self, rt: PluginRuntime, fresh: PluginCandidate) -> PluginInfo:
        # Nothing is serving, so there is nothing to hand over: take the new code,
        # re-resolve (it may now satisfy its dependents) and try to start it.
        rt.candidate.unload()
        fresh.name = rt.name
        rt.candidate = fresh
        self.manager.configure_runtime(rt)
        if rt.info.state == S.FAILED and not rt.resolution_failed:
            rt.info.state, rt.info.error = S.RESOLVED, None
        self.manager.resolve()
        await self.manager.start_with_dependents(rt.name)
        return rt.info

    async def _swap(self, rt: PluginRuntime, fresh: PluginCandidate) -> PluginInfo:
        name = rt.name
        if fresh.error is not None or fresh.spec is None:
            raise PluginError(
                f"reload of {name!r} failed, old version kept: {fresh.error}", plugin=name
            )
        if fresh.spec.name != name:
            raise PluginError(
                f"reload of {name!r} failed: the new code is named {fresh.spec.name!r}; a "
                f"rename is a new plugin, so restart the kernel instead",
                plugin=name,
            )
        try:
            settings, config = validate_plugin_config(
                name,
                fresh.spec.config_model,
                plugin_section(self.manager.config, name),
                validated_elsewhere=fresh.spec.target is not None,
            )
        except ConfigError as e:
            raise PluginError(
                f"reload of {name!r} failed, old version kept: {e}", plugin=name
            ) from e
        assert rt.instance is not None and rt.ctx is not None
        began = time.perf_counter()
        old_instance, old_ctx, old_candidate = rt.instance, rt.ctx, rt.candidate
        await old_ctx.bus.hold()
        try:
            state = await self.lifecycle.snapshot(rt)
            live = await self.lifecycle.handover(rt)
            incoming = PluginRuntime(
                info=rt.info, candidate=fresh, settings=settings, config=config
            )
            instance, ctx = await self.lifecycle.launch(
                incoming, restore=state, handed_over=live, staged=True
            )
        except PluginError as e:
            old_ctx.bus.resume()
            raise PluginError(
                f"reload of {name!r} failed, old version kept: {e}", plugin=name
            ) from e
        except BaseException:
            old_ctx.bus.resume()
            raise
        # The swap itself: no await from here until the runtime points at the new instance.
        moved = ctx.bus.take_over(old_ctx.bus)
        ctx.activate()
        rt.instance, rt.ctx = instance, ctx
        rt.candidate, rt.settings, rt.config = fresh, settings, config
        self.manager.configure_runtime(rt)
        rt.info.error = None
        await self.lifecycle.retire(rt, old_instance, old_ctx)
        old_candidate.unload()
        log.info(
            "reloaded %s %s in %.1f ms (%d queued event%s handed over)",
            name,
            rt.info.version,
            (time.perf_counter() - began) * 1000,
            moved,
            "" if moved == 1 else "s",
        )
        await self.lifecycle.announce(rt, "reloaded", None)
        return rt.info

    # -- plugin folders ------------------------------------------------------------------

    async def sync_path(self, path: Path) -> PluginInfo | None:
        """Bring the plugin at ``path`` (a file or package in a plugin folder) in line with
        the disk: load it if new, reload it if changed, uninstall it if gone."""
        async with self.manager.lock:
            rt = self._runtime_at(path)
            exists = path in folder_entries(path.parent)
            if rt is not None and rt.info.state != S.UNINSTALLED:
                if not exists:
                    await self._uninstall(rt)
                    return rt.info
                try:
                    return await self._reload(rt)
                except PluginError:
                    return rt.info  # logged and announced; the old version serves on
            if not exists:
                return None
            return await self._install(
                load_folder_plugin(path, self.manager.sandbox_forced), replacing=rt
            )

    def _runtime_at(self, path: Path) -> PluginRuntime | None:
        # Folders may be given relative (``--plugins-dir examples/plugins``) while the
        # watcher reports absolute paths: compare them resolved.
        wanted = path.resolve()
        for rt in self.manager.runtimes.values():
            if rt.candidate.path is not None and rt.candidate.path.resolve() == wanted:
                return rt
        return None

    async def _install(
        self, candidate: PluginCandidate, *, replacing: PluginRuntime | None = None
    ) -> PluginInfo:
        if replacing is not None:
            del self.manager.runtimes[replacing.name]
        rt = self.manager.add(candidate)
        self.manager.resolve()
        log.info("discovered %s %s at %s", rt.name, rt.info.version, rt.info.source)
        await self.manager.start_with_dependents(rt.name)
        # Plugins that failed only because this one was missing can start now.
        for name in self.manager.resolution.order:
            if self.manager.runtimes[name].info.state == S.RESOLVED:
                await self.manager.start_if_ready(name)
        return rt.info

    async def _uninstall(self, rt: PluginRuntime) -> None:
        await self.manager.stop_with_dependents(rt.name, final_state=S.UNINSTALLED)
        if rt.info.state != S.UNINSTALLED:
            await self.lifecycle.set_state(rt, S.UNINSTALLED, None)
        rt.candidate.unload()
        if rt.candidate.entry_point:
            forget_entry_point_modules(rt.candidate.entry_point)
        self.manager.resolve()
        log.info("uninstalled %s", rt.name)

    # -- entry points --------------------------------------------------------------------

    async def rescan(self) -> dict[str, list[str]]:
        """Compare installed entry points with the running plugins: start new ones,
        reload upgraded ones, uninstall removed ones. Returns the names per change."""
        changes: dict[str, list[str]] = {"added": [], "upgraded": [], "removed": []}
        if not self.manager.entry_points:
            return changes  # this kernel was told not to use installed plugins
        async with self.manager.lock:
            installed = {ep.value: ep for ep in entry_points()}
            known = {
                rt.candidate.entry_point: rt
                for rt in self.manager.runtimes.values()
                if rt.candidate.kind == "entrypoint" and rt.info.state != S.UNINSTALLED
            }
            for value, gone in known.items():
                if value not in installed:
                    await self._uninstall(gone)
                    changes["removed"].append(gone.name)
            for value, ep in installed.items():
                running = known.get(value)
                if running is None:
                    forget_entry_point_modules(value)
                    info = await self._install(load_entry_point(ep, self.manager.sandbox_forced))
                    changes["added"].append(info.name)
                elif distribution_version(ep) != running.candidate.distribution_version:
                    try:
                        await self._reload(running)
                    except PluginError:
                        pass  # logged and announced; the old version serves on
                    changes["upgraded"].append(running.name)
        return changes
