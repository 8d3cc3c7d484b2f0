"""Operator choices made at runtime that survive a restart: disabled plugins and
plugin configuration set through the API (see `_config_sources` for its precedence)."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Store

from ._config import OrreryConfig
from ._config_sources import RuntimeEntries, apply_runtime, config_sources, plan_runtime

__all__ = ["OperatorChoices"]

_LEGACY_CONFIG = "plugin_config"  # whole sections, from before values knew their base
_RUNTIME_CONFIG = "plugin_config_runtime"


class OperatorChoices:
    """Kept in the kernel's own store namespace; loaded at start, saved on every change."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self.disabled: set[str] = set()
        #: Runtime configuration values, each with the file value it replaced.
        self.config: RuntimeEntries = {}

    async def load(self) -> None:
        if self._store is None:
            return
        self.disabled = set(await self._store.get("disabled", []))
        self.config = dict(await self._store.get(_RUNTIME_CONFIG, {}))
        legacy: dict[str, dict[str, Any]] = dict(await self._store.get(_LEGACY_CONFIG, {}))
        for name, section in legacy.items():
            # Their base is unknown: a key the file sets wins over them (see apply()).
            entries = self.config.setdefault(name, {})
            for key, value in section.items():
                entries.setdefault(key, {"value": value})
        if legacy:
            await self._store.delete(_LEGACY_CONFIG)
            await self.save()

    async def save(self) -> None:
        if self._store is None:
            return
        await self._store.put("disabled", sorted(self.disabled))
        await self._store.put(_RUNTIME_CONFIG, self.config)

    def apply(self, config: OrreryConfig) -> None:
        """Overlay the runtime values on ``config`` (those the file or the environment
        overtook are dropped; saved with the next change)."""
        apply_runtime(config, self.config)

    def plan(
        self, config: OrreryConfig, name: str, values: dict[str, Any], defaults: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The effective section and runtime entries ``values`` would give; see
        `plan_runtime`."""
        return plan_runtime(config, name, values, defaults)

    def commit(
        self,
        config: OrreryConfig,
        name: str,
        section: dict[str, Any],
        entries: dict[str, dict[str, Any]],
    ) -> None:
        """Make a planned change current (call `save` afterwards)."""
        config.plugins[name] = section
        if entries:
            self.config[name] = entries
        else:
            self.config.pop(name, None)

    def sources(self, config: OrreryConfig, name: str, keys: list[str]) -> dict[str, str]:
        """Where each of ``keys`` of plugin ``name`` comes from."""
        return config_sources(config, self.config, name, keys)
