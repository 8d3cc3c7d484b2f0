"""The store and journal calls a worker makes, answered on the kernel's ``ctx``."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Context

from ._binding import journal_row

__all__ = ["StorageCalls"]

_MISSING = object()


class StorageCalls:
    """Mixed into `Bridge`: each call checks the ``store`` or ``journal`` permission."""

    ctx: Context

    def check(self, action: str, resource: str = "") -> None:
        raise NotImplementedError

    async def _store_get(self, key: str) -> list[Any]:
        self.check("store")
        value = await self.ctx.store.get(key, _MISSING)
        return [False, None] if value is _MISSING else [True, value]

    async def _store_put(self, key: str, value: Any) -> None:
        self.check("store")
        await self.ctx.store.put(key, value)

    async def _store_delete(self, key: str) -> bool:
        self.check("store")
        return await self.ctx.store.delete(key)

    async def _store_scan(self, prefix: str) -> list[list[Any]]:
        self.check("store")
        return [[k, v] async for k, v in self.ctx.store.scan(prefix)]

    async def _journal_append(self, stream: str, events: list[Any], expected: int | None) -> int:
        self.check("journal")
        return await self.ctx.journal.append(stream, events, expected_version=expected)

    async def _journal_read(self, stream: str, from_version: int) -> list[dict[str, Any]]:
        self.check("journal")
        return [journal_row(e) async for e in self.ctx.journal.read(stream, from_version)]

    async def _journal_version(self, stream: str) -> int:
        self.check("journal")
        return await self.ctx.journal.version(stream)

    async def _journal_read_all(self, position: int, until: int | None) -> list[dict[str, Any]]:
        self.check("journal")
        return [journal_row(e) async for e in self.ctx.journal.read_all(position, until)]

    async def _journal_save_snapshot(self, stream: str, version: int, state: Any) -> None:
        self.check("journal")
        await self.ctx.journal.save_snapshot(stream, version, state)

    async def _journal_load_snapshot(self, stream: str, max_version: int | None) -> Any:
        self.check("journal")
        found = await self.ctx.journal.load_snapshot(stream, max_version)
        return None if found is None else list(found)

    async def _journal_truncate(self, stream: str, before_version: int) -> int:
        self.check("journal")
        return await self.ctx.journal.truncate(stream, before_version)
