"""Sandbox benchmark: request/reply round trip through a sandboxed worker vs a raw
multiprocessing.Pipe round trip (the floor), measured in the same run; worker start time.

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

PLUGIN = """
from orrery.sdk import Plugin, hookimpl

class Bench(Plugin):
    @hookimpl
    def orrery_start(self, ctx):
        ctx.bus.subscribe("bench.echo", lambda event: event.data)
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
    """Captures the host's delivery handler so the bench drives it directly."""

    def __init__(self) -> None:
        self.handler: Callable[[Event], Awaitable[Any]] | None = None

    def subscribe(self, pattern: str, handler: Any, **_: Any) -> _Sub:
        self.handler = handler
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


async def bench_sandbox(folder: Path) -> tuple[list[float], list[float]]:
    path = folder / "bench_plugin.py"
    path.write_text(PLUGIN)
    limits = SandboxLimits(ping_interval=0)
    starts: list[float] = []
    for _ in range(STARTS):
        ctx = _Ctx()
        host = SandboxHost("bench", PluginTarget.from_path(path), ctx,  # type: ignore[arg-type]
                           permissions=parse_permissions(["bus.subscribe:bench.>"]),
                           limits=limits, config={})
        t0 = time.perf_counter()
        await host.start()
        starts.append((time.perf_counter() - t0) * 1000)
        await host.stop()
    ctx = _Ctx()
    host = SandboxHost("bench", PluginTarget.from_path(path), ctx,  # type: ignore[arg-type]
                       permissions=parse_permissions(["bus.subscribe:bench.>"]),
                       limits=limits, config={})
    await host.start()
    handler = ctx.bus.handler
    assert handler is not None
    event = _event("bench.echo", {"n": 1, "text": "hello"})
    out: list[float] = []
    try:
        for i in range(WARMUP + ROUNDS):
            t0 = time.perf_counter_ns()
            await handler(event)
            if i >= WARMUP:
                out.append((time.perf_counter_ns() - t0) / 1000)
    finally:
        await host.stop()
    return out, starts


def run() -> dict[str, float]:
    """Measure and return the benchmark's keys."""
    pipe = bench_pipe()
    with tempfile.TemporaryDirectory() as tmp:
        rtt, starts = asyncio.run(bench_sandbox(Path(tmp)))
    pipe_p50, pipe_p99 = _percentiles(pipe)
    rtt_p50, rtt_p99 = _percentiles(rtt)
    return {
        "sandbox.rtt_ratio_vs_pipe": round(rtt_p50 / pipe_p50, 3),
        "sandbox.rtt_p50_us": round(rtt_p50, 1),
        "sandbox.rtt_p99_us": round(rtt_p99, 1),
        "sandbox.pipe_p50_us": round(pipe_p50, 1),
        "sandbox.pipe_p99_us": round(pipe_p99, 1),
        "sandbox.worker_start_ms": round(statistics.median(starts), 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
