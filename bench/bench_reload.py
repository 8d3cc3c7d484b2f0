"""Hot reload: file save -> new code answering a request, beside the reload floor.

ours   a running kernel watching a plugin folder: write a new version of the file, then
       wait for ``orrery.plugin.reloaded`` and a request answered by the new code.
floor  what any reload must do: import the file afresh (importlib) and swap the class
       in pluggy (unregister the old instance, register the new one).

Also: RSS, live objects and sys.modules after 1,000 more saves (leaks show as growth).
Keys: reload.p50_ms, reload.p95_ms, reload.floor_p50_ms, reload.floor_p95_ms,
reload.rss_growth_kb_per_1000, reload.objects_growth_per_1000, reload.modules_growth.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pluggy
from orrery.kernel import Kernel
from orrery.sdk import Event, hookspecs

RELOADS = 200
LEAK_RELOADS = 1000

SOURCE = """
from orrery.sdk import Plugin, hookimpl

class Answer(Plugin):
    name = "answer"

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.bus.subscribe("answer.ask", lambda event: {version})
"""


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def _floor(folder: Path, n: int) -> list[float]:
    path = folder / "floor.py"
    pm = pluggy.PluginManager("orrery")
    pm.add_hookspecs(hookspecs)
    current: Any = None
    times = []
    for i in range(n):
        path.write_text(SOURCE.format(version=i))
        began = time.perf_counter()
        spec = importlib.util.spec_from_file_location(f"floor_{i}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if current is not None:
            pm.unregister(current)
        current = module.Answer()
        pm.register(current)
        times.append((time.perf_counter() - began) * 1000)
    return times


async def _ours(folder: Path, state: Path) -> tuple[list[float], dict[str, float]]:
    path = folder / "answer.py"
    path.write_text(SOURCE.format(version=-1))
    times = []
    async with Kernel(plugins_dirs=[folder], state_dir=state, entry_points=False, env={}) as k:
        reloaded: asyncio.Queue[Event] = asyncio.Queue()
        k.bus.subscribe("orrery.plugin.reloaded", reloaded.put_nowait)
        for i in range(RELOADS):
            began = time.perf_counter()
            path.write_text(SOURCE.format(version=i))
            while True:
                await reloaded.get()
                if await k.bus.request("answer.ask", None) == i:
                    break
            times.append((time.perf_counter() - began) * 1000)

        # Leaks: 1,000 more saves, compared before/after once everything has settled.
        async def save_and_wait(version: int) -> None:
            path.write_text(SOURCE.format(version=version))
            while True:
                await reloaded.get()
                if await k.bus.request("answer.ask", None) == version:
                    return

        for i in range(50):
            await save_and_wait(RELOADS + i)
        gc.collect()
        rss, objects, modules = _rss_kb(), len(gc.get_objects()), len(sys.modules)
        for i in range(LEAK_RELOADS):
            await save_and_wait(i)
        gc.collect()
        growth = {
            "reload.rss_growth_kb_per_1000": float(_rss_kb() - rss),
            "reload.objects_growth_per_1000": float(len(gc.get_objects()) - objects),
            "reload.modules_growth": float(len(sys.modules) - modules),
        }
        assert await k.bus.request("answer.ask", None) == LEAK_RELOADS - 1
    return times, growth


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "plugins").mkdir()
        (root / "floor").mkdir()
        floor = _floor(root / "floor", RELOADS)
        ours, growth = asyncio.run(_ours(root / "plugins", root / "state"))
    results = {
        "reload.p50_ms": round(statistics.median(ours), 3),
        "reload.p95_ms": round(_percentile(ours, 95), 3),
        "reload.floor_p50_ms": round(statistics.median(floor), 3),
        "reload.floor_p95_ms": round(_percentile(floor, 95), 3),
        **growth,
    }
    print(f"save -> new code answering, {RELOADS} reloads (watchdog + debounce + swap)")
    print(
        f"  ours   p50 {results['reload.p50_ms']:7.2f} ms   p95 {results['reload.p95_ms']:7.2f} ms"
    )
    print(
        f"  floor  p50 {results['reload.floor_p50_ms']:7.2f} ms   "
        f"p95 {results['reload.floor_p95_ms']:7.2f} ms   (importlib + pluggy swap)"
    )
    print(
        f"after {LEAK_RELOADS} more saves: "
        f"RSS {growth['reload.rss_growth_kb_per_1000']:+.0f} kB, "
        f"objects {growth['reload.objects_growth_per_1000']:+.0f}, "
        f"sys.modules {growth['reload.modules_growth']:+.0f}"
    )
    return results


if __name__ == "__main__":
    run()
