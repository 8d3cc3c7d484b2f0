"""Sandbox benchmark: request/reply round trip through a sandboxed worker vs a raw
multiprocessing.Pipe round trip (the floor), measured in the same run; worker start time.

The round trip is measured with the worker's spin-then-park on (the default) and off
(``spin_us = 0``), with a synchronous and an async handler, and the worker's CPU time per
event is measured for sparse traffic, where spinning must switch itself off.

Run: ``python bench/bench_sandbox.py``. Prints a JSON object; `run()` returns it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from orrery.sandbox import PluginTarget, SandboxHost, SandboxLimits, parse_permissions
from orrery.sdk import Event, new_event_id

ROUNDS = 5000
WARMUP = 500
STARTS = 10
SPARSE_EVENTS = 300
SPARSE_GAP_S = 0.002

PLUGIN = """
from orrery.sdk import Plugin, hookimpl

class Bench(Plugin):
    @hookimpl
    def orrery_start(self, ctx):
        ctx.bus.subscribe("bench.echo", lambda event: event.data)
        ctx.bus.subscribe("bench.echo_async", self.echo)

    async def echo(self, event):
        return event.data
"""


class _Sub:
    pattern = "bench.echo"
    group = None
    durable = None
    active = True

    def unsubscribe(self) -> None:
        pass

    async def drain(self) -> None:
        pass


class _Bus:
    """Captures the host's delivery handlers so the bench drives them directly."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[[Event], Awaitable[Any]]] = {}

    def subscribe(self, pattern: str, handler: Any, **_: Any) -> _Sub:
        self.handlers[pattern] = handler
        return _Sub()

    async def publish(self, topic: str, data: Any = None, **_: Any) -> Event:
        return _event(topic, data)


class _Ctx:
    def __init__(self) -> None:
        self.name = "bench"
        self.config: Any = {}
        self.log = logging.getLogger("orrery.plugins.bench")
        self.bus = _Bus()
        self.services = self.store = self.journal = self.http = None

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> Any:
        return asyncio.ensure_future(coro)


def _event(topic: str, data: Any) -> Event:
    return Event(id=new_event_id(), type=topic, source="orrery://bench/kernel",
                 time_ns=time.time_ns(), data=data)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def _pipe_child(conn: Connection) -> None:
    while True:
        msg = conn.recv()
        if msg is None:
            return
        conn.send(msg)


def bench_pipe() -> list[float]:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_pipe_child, args=(child,))
    proc.start()
    payload = {"n": 1, "text": "hello"}
    out: list[float] = []
    for i in range(WARMUP + ROUNDS):
        t0 = time.perf_counter_ns()
        parent.send(payload)
        parent.recv()
        if i >= WARMUP:
            out.append((time.perf_counter_ns() - t0) / 1000)
    parent.send(None)
    proc.join()
    return out


def _host(folder: Path, limits: SandboxLimits) -> tuple[SandboxHost, _Ctx]:
    path = folder / "bench_plugin.py"
    path.write_text(PLUGIN)
    ctx = _Ctx()
    host = SandboxHost("bench", PluginTarget.from_path(path), ctx,  # type: ignore[arg-type]
                       permissions=parse_permissions(["bus.subscribe:bench.>"]),
                       limits=limits, config={})
    return host, ctx


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants (bubblewrap, the worker), from the
    scheduler's nanosecond counters."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9


async def bench_starts(folder: Path) -> list[float]:
    starts: list[float] = []
    for _ in range(STARTS):
        host, _ctx = _host(folder, SandboxLimits(ping_interval=0))
        t0 = time.perf_counter()
        await host.start()
        starts.append((time.perf_counter() - t0) * 1000)
        await host.stop()
    return starts


async def bench_rtt(folder: Path, spin_us: float, topic: str) -> list[float]:
    """Back-to-back request/reply round trips in µs."""
    host, ctx = _host(folder, SandboxLimits(ping_interval=0, spin_us=spin_us))
    await host.start()
    handler = ctx.bus.handlers[topic]
    event = _event(topic, {"n": 1, "text": "hello"})
    out: list[float] = []
    try:
        for i in range(WARMUP + ROUNDS):
            t0 = time.perf_counter_ns()
            await handler(event)
            if i >= WARMUP:
                out.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        await host.stop()
    return out


async def bench_sparse_cpu(folder: Path, spin_us: float) -> float:
    """Worker CPU µs per event when events arrive SPARSE_GAP_S apart."""
    host, ctx = _host(folder, SandboxLimits(ping_interval=0, spin_us=spin_us))
    await host.start()
    handler = ctx.bus.handlers["bench.echo"]
    event = _event("bench.echo", {"n": 1, "text": "hello"})
    try:
        assert host.pid is not None
        before = _tree_cpu_s(host.pid)
        for _ in range(SPARSE_EVENTS):
            await handler(event)
            await asyncio.sleep(SPARSE_GAP_S)
        used = _tree_cpu_s(host.pid) - before
    finally:
        await host.stop()
    return used / SPARSE_EVENTS * 1e6


async def bench_sandbox(folder: Path) -> dict[str, Any]:
    return {
        "starts": await bench_starts(folder),
        "rtt": await bench_rtt(folder, SandboxLimits.spin_us, "bench.echo"),
        "rtt_nospin": await bench_rtt(folder, 0, "bench.echo"),
        "rtt_async": await bench_rtt(folder, SandboxLimits.spin_us, "bench.echo_async"),
        "sparse_cpu": await bench_sparse_cpu(folder, SandboxLimits.spin_us),
        "sparse_cpu_nospin": await bench_sparse_cpu(folder, 0),
    }


def run() -> dict[str, float]:
    """Measure and return the benchmark's keys."""
    pipe = bench_pipe()
    with tempfile.TemporaryDirectory() as tmp:
        got = asyncio.run(bench_sandbox(Path(tmp)))
    pipe_p50, pipe_p99 = _percentiles(pipe)
    rtt_p50, rtt_p99 = _percentiles(got["rtt"])
    nospin_p50, nospin_p99 = _percentiles(got["rtt_nospin"])
    async_p50, async_p99 = _percentiles(got["rtt_async"])
    return {
        "sandbox.rtt_ratio_vs_pipe": round(rtt_p50 / pipe_p50, 3),
        "sandbox.rtt_p50_us": round(rtt_p50, 1),
        "sandbox.rtt_p99_us": round(rtt_p99, 1),
        "sandbox.pipe_p50_us": round(pipe_p50, 1),
        "sandbox.pipe_p99_us": round(pipe_p99, 1),
        "sandbox.rtt_async_p50_us": round(async_p50, 1),
        "sandbox.rtt_async_p99_us": round(async_p99, 1),
        "sandbox.rtt_nospin_ratio_vs_pipe": round(nospin_p50 / pipe_p50, 3),
        "sandbox.rtt_nospin_p50_us": round(nospin_p50, 1),
        "sandbox.rtt_nospin_p99_us": round(nospin_p99, 1),
        "sandbox.sparse_cpu_us_per_event": round(got["sparse_cpu"], 1),
        "sandbox.sparse_cpu_nospin_us_per_event": round(got["sparse_cpu_nospin"], 1),
        "sandbox.worker_start_ms": round(statistics.median(got["starts"]), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
