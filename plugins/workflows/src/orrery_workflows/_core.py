"""The machinery. It takes SDK protocols (`Store`, `Clock`), never a Context, so it is
tested on its own with `orrery.sdk.testing.MemoryStore` and `ManualClock`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Clock, Store

from .errors import InvalidInput

__all__ = ["PingCounter"]

_STATE_KEY = "state"
_MAX_NAME = 100


class PingCounter:
    """Counts pings in the store, so the count survives restarts and reloads."""

    def __init__(self, store: Store, clock: Clock, *, reply: str) -> None:
        self._store = store
        self._clock = clock
        self._reply = reply
        self.count = 0
        self.last: float | None = None

    async def load(self) -> None:
        state = await self._store.get(_STATE_KEY) or {}
        self.count = int(state.get("count", 0))
        self.last = state.get("last")

    async def ping(self, who: str | None) -> dict[str, Any]:
        if who is not None and (not isinstance(who, str) or not 0 < len(who) <= _MAX_NAME):
            raise InvalidInput("who", who, f"give a name of 1 to {_MAX_NAME} characters")
        self.count += 1
        self.last = self._clock.now()
        await self._store.put(_STATE_KEY, {"count": self.count, "last": self.last})
        reply = f"{self._reply}, {who}" if who else self._reply
        return {"reply": reply, "count": self.count, "at": self.last}

    def stats(self) -> dict[str, Any]:
        return {"count": self.count, "last": self.last}

    async def reset(self) -> int:
        forgotten, self.count, self.last = self.count, 0, None
        await self._store.delete(_STATE_KEY)
        return forgotten
