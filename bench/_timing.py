"""Timing helpers shared by the benchmarks: best-of-N nanoseconds per operation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["best_ns_per_op", "best_ns_per_op_async"]


def best_ns_per_op(loop: Callable[[int], None], n: int, repeats: int = 7) -> float:
    """Run ``loop(n)`` ``repeats`` times; the fastest run's nanoseconds per iteration.

    The minimum is the figure least disturbed by other work on a shared machine.
    """
    loop(min(n, 1000))  # warm caches and lazy initialisation
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        loop(n)
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


def best_ns_per_op_async(loop: Callable[[int], Awaitable[None]], n: int, repeats: int = 7) -> float:
    """`best_ns_per_op` for a coroutine loop, timed inside one running event loop."""

    async def measure() -> float:
        await loop(min(n, 1000))
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter_ns()
            await loop(n)
            best = min(best, (time.perf_counter_ns() - start) / n)
        return best

    return asyncio.run(measure())
