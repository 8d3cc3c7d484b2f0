"""Scheduler throughput against Dramatiq and Celery on the local Redis, in the same run.

Measures enqueue + execution of N no-op tasks end to end:

- ours in memory (``persistence = "memory"``), one ``await scheduler.add(...)`` after
  the other; and durable (SQLite journal, the embedded default), one ``add()`` per task
  from 1,000 concurrent producers at a time (what arrives together is written in one
  journal append). Extra figures: both with ``add_many`` batches of 1,000;
- Dramatiq (``RedisBroker``, an in-process ``Worker``) and Celery (Redis broker, the
  in-process test worker ``celery.contrib.testing.worker.start_worker``), each
  enqueued with one ``send()`` / ``delay()`` per task;
- memory per queued task: tracemalloc over 100,000 queued tasks (queue paused).

Run as a script: ``python bench/bench_scheduler.py``. Targets: >= 50,000 tasks/s in
memory, >= 5,000/s durable, durable / Dramatiq >= 3, <= 1 KB per queued task.
Dramatiq or Celery missing (or Redis down) leaves their figures out.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from typing import Any

N_OURS = 50_000
N_PEERS = 5_000
N_MEMORY = 100_000
CHUNK = 1_000
#: Seconds a peer may take before its figure is given up (a stalled worker).
PEER_TIMEOUT = 120
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")


async def _ours(persistence: str, n: int, enqueue: str) -> float:
    """Tasks/s: ``enqueue`` is "each" (one awaited add() after the other), "gather"
    (CHUNK concurrent add() calls at a time) or "batch" (add_many of CHUNK tasks)."""
    from orrery.kernel import Kernel  # noqa: TID251 - the bench embeds a real kernel
    from orrery_scheduler import SCHEDULER, SchedulerPlugin

    config = {"plugins": {"scheduler": {"persistence": persistence, "concurrency": 1000}}}
    with tempfile.TemporaryDirectory() as state_dir:
        kernel = Kernel(
            state_dir=state_dir,
            plugins=[SchedulerPlugin],
            config=config,
            entry_points=False,
            watch=False,
            env={},
        )
        async with kernel:
            scheduler = kernel.manager.services.get(SCHEDULER)
            done = asyncio.Event()
            ran = 0
            last: list[str] = []

            async def noop(job: Any) -> None:
                nonlocal ran
                ran += 1
                if ran == n:
                    last.append(job.id)
                    done.set()

            scheduler.register("noop", noop)
            start = time.perf_counter()
            for offset in range(0, n, CHUNK):
                size = min(CHUNK, n - offset)
                if enqueue == "batch":
                    await scheduler.add_many([("noop", None)] * size)
                elif enqueue == "gather":
                    await asyncio.gather(*(scheduler.add("noop") for _ in range(size)))
                else:
                    for _ in range(size):
                        await scheduler.add("noop")
            await done.wait()
            await scheduler.wait(last[0])  # its completion is stored, and all before it
            return n / (time.perf_counter() - start)


async def _bytes_per_queued_task(n: int) -> float:
    from orrery.kernel import Kernel  # noqa: TID251
    from orrery_scheduler import SCHEDULER, SchedulerPlugin

    config = {"plugins": {"scheduler": {"persistence": "memory"}}}
    with tempfile.TemporaryDirectory() as state_dir:
        kernel = Kernel(
            state_dir=state_dir,
            plugins=[SchedulerPlugin],
            config=config,
            entry_points=False,
            watch=False,
            env={},
        )
        async with kernel:
            scheduler = kernel.manager.services.get(SCHEDULER)
            scheduler.register("noop", lambda: None, mode="inline")
            await scheduler.pause_queue("default")
            await scheduler.add_many([("noop", {"i": 0})] * 10)  # warm lazy structures
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for offset in range(0, n, CHUNK):
                await scheduler.add_many([("noop", {"i": offset + i}) for i in range(CHUNK)])
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            return (after - before) / n


def _dramatiq(n: int) -> float:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=f"{REDIS_URL}/15", namespace="orrery-bench")
    broker.flush_all()
    dramatiq.set_broker(broker)
    counter = {"n": 0}
    finished = threading.Event()
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, max_retries=0, queue_name=f"bench-{uuid.uuid4().hex[:8]}")
    def noop() -> None:
        with lock:
            counter["n"] += 1
            if counter["n"] == n:
                finished.set()

    worker = dramatiq.Worker(broker, worker_threads=8, worker_timeout=100)
    worker.start()
    try:
        start = time.perf_counter()
        for _ in range(n):
            noop.send()
        if not finished.wait(timeout=PEER_TIMEOUT):
            raise RuntimeError(f"dramatiq ran {counter['n']} of {n} tasks in {PEER_TIMEOUT} s")
        return n / (time.perf_counter() - start)
    finally:
        worker.stop()
        broker.flush_all()
        broker.close()


def _celery(n: int) -> float:
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    app = Celery("orrery_bench", broker=f"{REDIS_URL}/14", backend=None)
    # A fresh queue per run: nothing left over from an earlier run can interfere, and
    # nothing else in this Redis database is touched.
    queue = f"orrery-bench-{uuid.uuid4().hex[:8]}"
    app.conf.update(
        task_ignore_result=True, worker_prefetch_multiplier=64, task_default_queue=queue
    )
    counter = {"n": 0}
    finished = threading.Event()
    lock = threading.Lock()

    @app.task(name="bench.noop")
    def noop() -> None:
        with lock:
            counter["n"] += 1
            if counter["n"] == n:
                finished.set()

    try:
        with start_worker(app, pool="threads", concurrency=8, perform_ping_check=False):
            start = time.perf_counter()
            for _ in range(n):
                noop.delay()
            if not finished.wait(timeout=PEER_TIMEOUT):
                raise RuntimeError(f"celery ran {counter['n']} of {n} tasks in {PEER_TIMEOUT} s")
            return n / (time.perf_counter() - start)
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.client.delete(queue)


def _best(fn: Any, repeats: int = 3) -> float:
    return max(fn() for _ in range(repeats))


def run() -> dict[str, float]:
    """The scheduler figures (peers are skipped when not installed or Redis is down)."""
    results: dict[str, float] = {}
    results["scheduler.mem_tasks_per_s"] = _best(
        lambda: asyncio.run(_ours("memory", N_OURS, "each"))
    )
    results["scheduler.mem_batch_tasks_per_s"] = _best(
        lambda: asyncio.run(_ours("memory", N_OURS, "batch"))
    )
    results["scheduler.durable_tasks_per_s"] = _best(
        lambda: asyncio.run(_ours("journal", N_OURS, "gather"))
    )
    results["scheduler.durable_batch_tasks_per_s"] = _best(
        lambda: asyncio.run(_ours("journal", N_OURS, "batch"))
    )
    results["scheduler.bytes_per_queued_task"] = asyncio.run(_bytes_per_queued_task(N_MEMORY))
    durable = results["scheduler.durable_tasks_per_s"]
    for peer, measure in (("dramatiq", _dramatiq), ("celery", _celery)):
        try:
            rate = measure(N_PEERS)
        except Exception as e:  # a missing peer must not hide our own figures
            print(f"{peer}: skipped ({type(e).__name__}: {e})", file=sys.stderr)
            continue
        results[f"scheduler.{peer}_tasks_per_s"] = rate
        results[f"scheduler.ratio_vs_{peer}"] = durable / rate
    return results


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:42} {value:14,.2f}")
