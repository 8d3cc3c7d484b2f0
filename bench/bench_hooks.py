"""The kernel's hook relay beside raw pluggy ``pm.hook.x()`` with the same implementations.

The relay's call every guarded operation makes is ``authorize`` (``orrery_authorize``,
walked until one implementation decides; here none does, so all are called, as pluggy
calls all of a firstresult hook whose implementations return None).

Key ``hooks.ratio_vs_pluggy`` (target <= 1.2): what the kernel's relay adds on top of pluggy.
``hooks.broadcast_ns_per_call`` keeps its name: it is the relay's time per call.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _timing import best_ns_per_op, best_ns_per_op_async  # noqa: E402
from orrery.kernel.plugins import HookRelay, new_pluggy_manager  # noqa: E402
from orrery.sdk import hookimpl  # noqa: E402

IMPLEMENTATIONS = 5
N = 100_000


class Abstainer:
    """An ``orrery_authorize`` implementation with no opinion (returns None)."""

    def __init__(self, i: int) -> None:
        self.i = i

    @hookimpl
    def orrery_authorize(self, principal: str, action: str, resource: str) -> bool | None:
        return None


def _manager() -> Any:
    pm = new_pluggy_manager()
    for i in range(IMPLEMENTATIONS):
        pm.register(Abstainer(i), name=f"r{i}")
    return pm


def run() -> dict[str, float]:
    raw_pm = _manager()
    relay = HookRelay(_manager(), timeout=5.0)

    def raw(n: int) -> None:
        call = raw_pm.hook.orrery_authorize
        for _ in range(n):
            call(principal="p", action="bus.publish", resource="t")

    async def ours(n: int) -> None:
        authorize = relay.authorize
        for _ in range(n):
            await authorize("p", "bus.publish", "t")

    raw_ns = best_ns_per_op(raw, N)
    ours_ns = best_ns_per_op_async(ours, N)
    ratio = ours_ns / raw_ns
    print(f"orrery_authorize, {IMPLEMENTATIONS} sync implementations, none deciding")
    print(f"  raw pluggy pm.hook.x()   {raw_ns:8.0f} ns/call")
    print(f"  kernel HookRelay         {ours_ns:8.0f} ns/call   ratio {ratio:.2f}")
    return {
        "hooks.pluggy_ns_per_call": round(raw_ns, 1),
        "hooks.broadcast_ns_per_call": round(ours_ns, 1),
        "hooks.ratio_vs_pluggy": round(ratio, 3),
    }


if __name__ == "__main__":
    run()
