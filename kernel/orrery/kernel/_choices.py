"""Operator choices made at runtime that survive a restart: disabled plugins and
plugin configuration set through the API."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Store

__all__ = ["OperatorChoices"]


class OperatorChoices:
    """Kept in the kernel's own store namespace; loaded at start, saved on every change."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self.disabled: set[str] = set()
        self.config: dict[str, dict[str, Any]] = {}

    async def load(self) -> None:
        if self._store is None:
            return
        self.disabled = set(await self._store.get("disabled", []))
        self.config = dict(await self._store.get("plugin_config", {}))

    async def save(self) -> None:
        if self._store is None:
            return
        await self._store.put("disabled", sorted(self.disabled))
        await self._store.put("plugin_config", self.config)
