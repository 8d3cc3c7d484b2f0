"""Publish -> one sync subscriber: the memory bus against a floor and its peers.

Every contender delivers the same integer payload to one do-nothing handler, measured in
the same process and run, best of several repeats (interleaved, so drift hits all alike):

floor    a publish function over a dict of handler lists: the least any bus can do
pyee     pyee.EventEmitter.emit
blinker  a named blinker signal's send
bubus    bubus.EventBus: awaiting each dispatched event until its handler ran. bubus
         runs handlers in its own loop task (and builds a pydantic model per event), so
         its figure is end-to-end latency per event, shown for reference, not a peer ratio
bus      ``await client.publish(topic, i)`` on orrery's MemoryBus, building a full
         CloudEvents Event (UUIDv7 id, timestamp, source) per publish

Also reported: ``bus.event_floor_ns``, what building that Event alone costs (clock read,
id, Struct) and so what any publish carrying one pays, and ``bus.async_ns_per_event``,
publish to an async subscriber (queued, delivered by the subscriber's worker task).

Installed (issue 12 §4), measured in one run with a dict payload and one sync subscriber:
``bus.installed_ns_per_event`` publishes through ``Kernel(...)`` with the standard
plugins installed (entry points: scheduler, metrics...), against the same kernel bare
(``entry_points=False``, no plugins: ``bus.installed_ratio_vs_bare``) and pyee emitting
the same payload to one handler (``bus.installed_ratio_vs_pyee``).

Run: ``python bench/bench_bus.py``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from orrery.kernel import Kernel
from orrery.kernel.bus import MemoryBus  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.sdk import Event
from orrery.sdk.wire import EventIdGenerator

N = 100_000
REPEATS = 9
BUBUS_N = 50
BUBUS_REPEATS = 3
TOPIC = "bench.ping"

SyncLoop = Callable[[int], None]
AsyncLoop = Callable[[int], Awaitable[None]]


def _handler(event: Any) -> None:
    return None


def _blinker_receiver(sender: Any, **kwargs: Any) -> None:
    return None


def _floor() -> SyncLoop:
    handlers: dict[str, list[Callable[[Any], None]]] = {TOPIC: [_handler]}

    def publish(topic: str, data: Any) -> None:
        for handler in handlers.get(topic, ()):
            handler(data)

    def loop(n: int) -> None:
        for i in range(n):
            publish(TOPIC, i)

    return loop


def _pyee() -> SyncLoop:
    from pyee import EventEmitter

    emitter = EventEmitter()
    emitter.on(TOPIC, _handler)

    def loop(n: int) -> None:
        emit = emitter.emit
        for i in range(n):
            emit(TOPIC, i)

    return loop


def _blinker() -> SyncLoop:
    import blinker

    signal = blinker.Namespace().signal(TOPIC)
    signal.connect(_blinker_receiver)

    def loop(n: int) -> None:
        send = signal.send
        for i in range(n):
            send(i)

    return loop


def _event_floor() -> SyncLoop:
    ids = EventIdGenerator()

    def loop(n: int) -> None:
        next_id = ids.next_id
        time_ns = time.time_ns
        for i in range(n):
            now = time_ns()
            Event(id=next_id(now), type=TOPIC, source="orrery://bench/bench", time_ns=now, data=i)

    return loop


def _time_sync(loop: SyncLoop, n: int) -> float:
    start = time.perf_counter_ns()
    loop(n)
    return (time.perf_counter_ns() - start) / n


async def _time_async(loop: AsyncLoop, n: int) -> float:
    start = time.perf_counter_ns()
    await loop(n)
    return (time.perf_counter_ns() - start) / n


async def _bubus_ns_per_event() -> float:
    """End-to-end ns per event on bubus, or NaN if it is not installed."""
    try:
        from bubus import BaseEvent, EventBus  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - bubus is an optional bench dependency
        return float("nan")

    class Ping(BaseEvent[None]):  # type: ignore[misc,unused-ignore]
        n: int = 0

    logging.getLogger("bubus").setLevel(logging.ERROR)
    bus = EventBus(name="bench", max_history_size=50)
    bus.on(Ping, _handler)
    best = float("inf")
    for _ in range(BUBUS_REPEATS):
        start = time.perf_counter_ns()
        for i in range(BUBUS_N):
            await bus.dispatch(Ping(n=i))
        best = min(best, (time.perf_counter_ns() - start) / BUBUS_N)
    await bus.stop()
    return best


async def _measure() -> dict[str, float]:
    bus = MemoryBus("bench")
    await bus.start()
    client = bus.client("orrery://bench/bench")
    client.subscribe(TOPIC, _handler)

    async def ours(n: int) -> None:
        publish = client.publish
        for i in range(n):
            await publish(TOPIC, i)

    async_client = bus.client("orrery://bench/async")

    async def async_handler(event: Event) -> None:
        return None

    async_sub = async_client.subscribe("bench.async", async_handler)

    async def ours_async(n: int) -> None:
        publish = async_client.publish
        for i in range(n):
            await publish("bench.async", i)
        await async_sub.wait_idle()

    sync_loops: dict[str, SyncLoop] = {
        "floor": _floor(),
        "pyee": _pyee(),
        "blinker": _blinker(),
        "event": _event_floor(),
    }
    async_loops: dict[str, AsyncLoop] = {"bus": ours, "bus_async": ours_async}
    best = {name: float("inf") for name in (*sync_loops, *async_loops)}
    for loop in sync_loops.values():  # warm up
        loop(1000)
    for aloop in async_loops.values():
        await aloop(1000)
    for _ in range(REPEATS):
        for name, loop in sync_loops.items():
            best[name] = min(best[name], _time_sync(loop, N))
        for name, aloop in async_loops.items():
            best[name] = min(best[name], await _time_async(aloop, N))
    await bus.stop()
    bubus = await _bubus_ns_per_event()
    return {
        "bus.ns_per_event": best["bus"],
        "bus.floor_ns_per_event": best["floor"],
        "bus.pyee_ns_per_event": best["pyee"],
        "bus.blinker_ns_per_event": best["blinker"],
        "bus.bubus_ns_per_event": bubus,
        "bus.event_floor_ns": best["event"],
        "bus.async_ns_per_event": best["bus_async"],
        "bus.ratio_vs_pyee": best["bus"] / best["pyee"],
        "bus.ratio_vs_floor": best["bus"] / best["floor"],
        "bus.ratio_vs_blinker": best["bus"] / best["blinker"],
    }


async def _measure_installed() -> dict[str, float]:
    """Kernel with the installed plugins vs the bare kernel vs pyee, dict payload."""
    payload = {"id": 1, "who": "world", "n": 2.5}
    logging.getLogger("orrery").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        installed = Kernel(state_dir=root / "installed", env={}, watch=False)
        bare = Kernel(state_dir=root / "bare", entry_points=False, env={}, watch=False)
        await installed.start()
        await bare.start()
        try:
            loops: dict[str, AsyncLoop] = {}
            for name, kernel in (("installed", installed), ("bare", bare)):
                kernel.bus.subscribe(TOPIC, _handler)

                async def loop(n: int, publish: Any = kernel.bus.publish) -> None:
                    for _ in range(n):
                        await publish(TOPIC, payload)

                loops[name] = loop
            plugins = sorted(installed.plugins)
            from pyee import EventEmitter

            emitter = EventEmitter()
            emitter.on(TOPIC, _handler)

            def pyee(n: int) -> None:
                emit = emitter.emit
                for _ in range(n):
                    emit(TOPIC, payload)

            best = {"installed": float("inf"), "bare": float("inf"), "pyee": float("inf")}
            pyee(1000)
            for aloop in loops.values():
                await aloop(1000)
            for _ in range(REPEATS):
                best["pyee"] = min(best["pyee"], _time_sync(pyee, N))
                for name, aloop in loops.items():
                    best[name] = min(best[name], await _time_async(aloop, N))
        finally:
            await installed.stop()
            await bare.stop()
    print(f"installed plugins: {', '.join(plugins) or 'none'}")
    return {
        "bus.installed_ns_per_event": best["installed"],
        "bus.installed_bare_ns_per_event": best["bare"],
        "bus.installed_pyee_ns_per_event": best["pyee"],
        "bus.installed_ratio_vs_bare": best["installed"] / best["bare"],
        "bus.installed_ratio_vs_pyee": best["installed"] / best["pyee"],
        "bus.installed_plugins": float(len(plugins)),
    }


def run() -> dict[str, float]:
    """Measure every contender; flat ``bus.*`` keys, nanoseconds per event and ratios."""
    results = asyncio.run(_measure())
    results.update(asyncio.run(_measure_installed()))
    return results


def main() -> None:
    results = run()
    pyee = results["bus.pyee_ns_per_event"]
    floor = results["bus.floor_ns_per_event"]
    rows = [
        ("dict-of-lists floor", results["bus.floor_ns_per_event"]),
        ("pyee EventEmitter", pyee),
        ("blinker signal", results["bus.blinker_ns_per_event"]),
        ("bubus EventBus (end to end)", results["bus.bubus_ns_per_event"]),
        ("orrery MemoryBus publish", results["bus.ns_per_event"]),
        ("  of which: build the Event", results["bus.event_floor_ns"]),
        ("orrery MemoryBus, async sub", results["bus.async_ns_per_event"]),
    ]
    print(f"publish -> one subscriber, best of {REPEATS} x {N:,} events (Python {sys.version})")
    print(f"{'contender':32} {'ns/event':>12} {'vs floor':>9} {'vs pyee':>8}")
    for name, value in rows:
        print(f"{name:32} {value:12,.0f} {value / floor:9.2f} {value / pyee:8.2f}")
    installed = results["bus.installed_ns_per_event"]
    print(
        f"through Kernel(...), dict payload: {installed:,.0f} ns/event with the installed "
        f"plugins, x{results['bus.installed_ratio_vs_bare']:.2f} the bare kernel, "
        f"x{results['bus.installed_ratio_vs_pyee']:.2f} pyee"
    )
    print()
    for key, value in results.items():
        print(f"{key} = {value:.3f}")


if __name__ == "__main__":
    main()
