"""A kernel hook broadcast beside raw pluggy ``pm.hook.x()`` with the same implementations.

Key ``hooks.ratio_vs_pluggy`` (target <= 1.2): what the kernel's relay adds on top of pluggy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _timing import best_ns_per_op, best_ns_per_op_async  # noqa: E402
from orrery.kernel.plugins import HookRelay  # noqa: E402
from orrery.kernel.plugins._hooks import new_pluggy_manager  # noqa: E402
from orrery.sdk import hookimpl  # noqa: E402

IMPLEMENTATIONS = 5
N = 100_000


class Reporter:
    def __init__(self, i: int) -> None:
        self.answer = {"ok": True, "i": i}

    @hookimpl
    def orrery_health(self, ctx: Any) -> dict[str, Any]:
        return self.answer


def _manager() -> Any:
    pm = new_pluggy_manager()
    for i in range(IMPLEMENTATIONS):
        pm.register(Reporter(i), name=f"r{i}")
    return pm


def run() -> dict[str, float]:
    raw_pm = _manager()
    relay = HookRelay(_manager(), timeout=5.0)

    def raw(n: int) -> None:
        call = raw_pm.hook.orrery_health
        for _ in range(n):
            call(ctx=None)

    async def ours(n: int) -> None:
        broadcast = relay.broadcast
        for _ in range(n):
            await broadcast("orrery_health", ctx=None)

    raw_ns = best_ns_per_op(raw, N)
    ours_ns = best_ns_per_op_async(ours, N)
    ratio = ours_ns / raw_ns
    print(f"hook broadcast, {IMPLEMENTATIONS} sync implementations")
    print(f"  raw pluggy pm.hook.x()   {raw_ns:8.0f} ns/call")
    print(f"  kernel HookRelay         {ours_ns:8.0f} ns/call   ratio {ratio:.2f}")
    return {
        "hooks.pluggy_ns_per_call": round(raw_ns, 1),
        "hooks.broadcast_ns_per_call": round(ours_ns, 1),
        "hooks.ratio_vs_pluggy": round(ratio, 3),
    }


if __name__ == "__main__":
    run()
