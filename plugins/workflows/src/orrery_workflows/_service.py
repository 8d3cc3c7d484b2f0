"""The facade other plugins get from ``ctx.services``: a few plain methods."""

from __future__ import annotations

from typing import Any

from ._core import PingCounter

__all__ = ["WorkflowsService"]


class WorkflowsService:
    """What the workflows plugin offers other plugins."""

    def __init__(self, core: PingCounter) -> None:
        self._core = core

    async def ping(self, who: str | None = None) -> dict[str, Any]:
        """Count a ping; ``{"reply", "count", "at"}``."""
        return await self._core.ping(who)

    def stats(self) -> dict[str, Any]:
        """``{"count", "last"}``: pings so far and when the last one came (epoch s)."""
        return self._core.stats()

    async def reset(self) -> dict[str, Any]:
        """Forget every ping; ``{"count": <how many were forgotten>}``."""
        return {"count": await self._core.reset()}
