"""Finding plugin code: discovery at start, plugin-folder edits, entry-point rescans.

This module finds plugins, decides *what* changed and reads the new code; the manager
applies it (`PluginManager.apply`, `install`, `uninstall`) and the lifecycle swaps.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from orrery.kernel.config import plugin_section
from orrery.kernel.errors import PluginError

from ._admission import SandboxPolicy
from ._loading import (
    PluginCandidate,
    class_candidate,
    discover_entry_points,
    discover_folder,
    distribution_version,
    entry_points,
    folder_entries,
    forget_entry_point_modules,
    load_entry_point,
    load_folder_plugin,
)
from ._runtime import PluginRuntime

if TYPE_CHECKING:
    from importlib_metadata import EntryPoint
from ._state import PluginInfo, PluginState

if TYPE_CHECKING:
    from ._manager import PluginManager

__all__ = ["CodeChanges"]

log = logging.getLogger("orrery.kernel.reload")
S = PluginState


class CodeChanges:
    """Finds what changed in a `PluginManager`'s plugin sources and hands it over."""

    def __init__(self, manager: PluginManager) -> None:
        self.manager = manager

    def discover(self) -> list[PluginCandidate]:
        """Every plugin the manager is configured to find: given classes, installed entry
        points, plugin folders (read in this thread)."""
        manager = self.manager
        candidates = [class_candidate(cls) for cls in manager.plugin_classes]
        timeout = manager.config.kernel.import_timeout
        policy = self.sandbox_policy
        if manager.entry_points:
            candidates += discover_entry_points(policy, import_timeout=timeout)
        for folder in manager.plugins_dirs:
            if not folder.is_dir():
                log.warning("plugin folder %s does not exist; skipping it", folder)
                continue
            candidates += discover_folder(folder, policy, import_timeout=timeout)
        return candidates

    def sandbox_forced(self, name: str) -> bool:
        """Whether ``[plugins.<name>] sandbox`` puts the plugin in the sandbox."""
        return bool(plugin_section(self.manager.config, name).get("sandbox"))

    @property
    def sandbox_policy(self) -> SandboxPolicy:
        """What configuration forces into the sandbox."""
        plugins = self.manager.config.plugins
        names = frozenset(n for n, section in plugins.items() if section.get("sandbox"))
        return SandboxPolicy(self.sandbox_forced, names)

    async def load_folder(self, path: Path) -> PluginCandidate:
        """Import the folder plugin at ``path`` off the event loop (bounded in time), so
        the kernel serves on while it loads."""
        return await asyncio.to_thread(
            load_folder_plugin,
            path,
            self.sandbox_policy,
            import_timeout=self.manager.config.kernel.import_timeout,
        )

    async def load_entry(self, ep: EntryPoint) -> PluginCandidate:
        forget_entry_point_modules(ep.value)
        return await asyncio.to_thread(
            load_entry_point,
            ep,
            self.sandbox_policy,
            import_timeout=self.manager.config.kernel.import_timeout,
        )

    async def reimport(self, rt: PluginRuntime) -> PluginCandidate:
        """Read ``rt``'s code afresh: a new candidate (with its error if it is unusable)."""
        candidate = rt.candidate
        if candidate.kind == "folder" and candidate.path is not None:
            return await self.load_folder(candidate.path)
        if candidate.kind == "class":
            return PluginCandidate(
                name=rt.name,
                source=candidate.source,
                kind="class",
                error="it was given to the kernel as a class, so there is no code to re-read",
            )
        for ep in entry_points():
            if ep.value == candidate.entry_point or ep.name == rt.name:
                return await self.load_entry(ep)
        return PluginCandidate(
            name=rt.name,
            source=candidate.source,
            kind=candidate.kind,
            error="its entry point is gone; the distribution was uninstalled",
        )

    # -- plugin folders ------------------------------------------------------------------

    async def sync_path(self, path: Path) -> PluginInfo | None:
        """Bring the plugin at ``path`` (a file or package in a plugin folder) in line with
        the disk: load it if new, reload it if changed, uninstall it if gone."""
        async with self.manager.lock:
            rt = self._runtime_at(path)
            exists = path in folder_entries(path.parent)
            if rt is not None and rt.info.state != S.UNINSTALLED:
                if not exists:
                    await self.manager.uninstall(rt)
                    return rt.info
                try:
                    return await self.manager.apply(rt, await self.reimport(rt))
                except PluginError:
                    return rt.info  # logged and announced; the old version serves on
            if not exists:
                return None
            return await self.manager.install(await self.load_folder(path), replacing=rt)

    def _runtime_at(self, path: Path) -> PluginRuntime | None:
        # Folders may be given relative (``--plugins-dir examples/plugins``) while the
        # watcher reports absolute paths: compare them resolved.
        wanted = path.resolve()
        for rt in self.manager.runtimes.values():
            if rt.candidate.path is not None and rt.candidate.path.resolve() == wanted:
                return rt
        return None

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
                    await self.manager.uninstall(gone)
                    if value:
                        forget_entry_point_modules(value)
                    changes["removed"].append(gone.name)
            for value, ep in installed.items():
                running = known.get(value)
                if running is None:
                    info = await self.manager.install(await self.load_entry(ep))
                    changes["added"].append(info.name)
                elif distribution_version(ep) != running.candidate.distribution_version:
                    try:
                        await self.manager.apply(running, await self.reimport(running))
                    except PluginError:
                        pass  # logged and announced; the old version serves on
                    changes["upgraded"].append(running.name)
        return changes
