"""Concurrency limits, quotas, affinity and preemption in a real kernel."""

from __future__ import annotations

import asyncio
from typing import Any

from orrery_scheduler import Job


class Gate:
    """Task functions that block until released, recording who is running."""

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.peak: dict[str, int] = {}
        self.release = asyncio.Event()
        self.changed = asyncio.Event()

    async def work(self, data: str, job: Job) -> str:
        self.running.add(job.id)
        self.peak[data] = max(self.peak.get(data, 0), sum(1 for _ in self.running))
        self.changed.set()
        try:
            await self.release.wait()
        finally:
            self.running.discard(job.id)
        return data

    async def until_running(self, n: int) -> None:
        while len(self.running) < n:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


async def _all_done(scheduler: Any, ids: list[str]) -> list[dict[str, Any]]:
    return [await scheduler.wait(i, timeout=5) for i in ids]


async def test_global_and_per_queue_concurrency(scheduler_kernel: Any) -> None:
    config = {"concurrency": 3, "queues": {"slow": {"concurrency": 1}}}
    async with scheduler_kernel(**config) as (k, scheduler):
        gate = Gate()
        scheduler.register("work", gate.work)
        slow = [await scheduler.add("work", "slow", queue="slow") for _ in range(3)]
        fast = [await scheduler.add("work", "fast") for _ in range(3)]
        await gate.until_running(3)
        stats = scheduler.stats()
        assert stats["running_here"] == 3
        assert stats["queues"]["slow"]["running_here"] == 1
        assert stats["queues"]["default"]["running_here"] == 2
        gate.release.set()
        await _all_done(scheduler, slow + fast)
        assert gate.peak["slow"] <= 3


async def test_group_quota_limits_running_resources(scheduler_kernel: Any) -> None:
    async with scheduler_kernel(quotas={"team-a": {"cpu": 2}}) as (k, scheduler):
        gate = Gate()
        scheduler.register("work", gate.work)
        ids = [
            await scheduler.add("work", "a", group="team-a", resources={"cpu": 1}) for _ in range(4)
        ]
        other = await scheduler.add("work", "b", group="team-b", resources={"cpu": 5})
        await gate.until_running(3)
        assert scheduler.stats()["resources"]["groups"]["team-a"] == {"cpu": 2.0}
        assert sorted(t["state"] for t in map(scheduler.get, ids)) == [
            "queued",
            "queued",
            "running",
            "running",
        ]
        gate.release.set()
        assert all(t["state"] == "completed" for t in await _all_done(scheduler, ids + [other]))


async def test_exclusive_and_anti_affinity(scheduler_kernel: Any) -> None:
    async with scheduler_kernel() as (k, scheduler):
        gate = Gate()
        scheduler.register("work", gate.work)
        first = await scheduler.add("work", "backup", tags=["backup"], exclusive=["backup"])
        second = await scheduler.add("work", "backup", tags=["backup"], exclusive=["backup"])
        apart = await scheduler.add("work", "apart", anti_affinity=["backup"])
        free = await scheduler.add("work", "free")
        await gate.until_running(2)
        assert scheduler.get(first)["state"] == "running"
        assert scheduler.get(second)["state"] == "queued"
        assert scheduler.get(apart)["state"] == "queued"
        assert scheduler.get(free)["state"] == "running"
        gate.release.set()
        await _all_done(scheduler, [first, second, apart, free])


async def test_node_affinity(scheduler_kernel: Any) -> None:
    async with scheduler_kernel(node_labels=["gpu"]) as (k, scheduler):
        scheduler.register("noop", lambda: None, mode="inline")
        here = await scheduler.add("noop", nodes=["gpu"])
        with_agent = await scheduler.add("noop", affinity=["gpu"], agent="planner")
        elsewhere = await scheduler.add("noop", nodes=["node-that-does-not-exist"])
        avoided = await scheduler.add("noop", avoid_nodes=[scheduler.node])
        await _all_done(scheduler, [here, with_agent])
        assert scheduler.get(elsewhere)["state"] == "queued"
        assert scheduler.get(avoided)["state"] == "queued"


async def test_preemption_requeues_a_lower_priority_task(scheduler_kernel: Any) -> None:
    async with scheduler_kernel(concurrency=1) as (k, scheduler):
        order: list[str] = []
        started = asyncio.Event()

        async def background(job: Job) -> str:
            order.append(f"background#{job.attempt}")
            if job.attempt == 1:
                started.set()
                await asyncio.Event().wait()
            return "resumed"

        scheduler.register("background", background)
        scheduler.register("urgent", lambda: order.append("urgent"), mode="inline")
        low = await scheduler.add("background", priority="low", preemptible=True)
        await started.wait()
        requeued = k.expect("task.requeued")
        high = await scheduler.add("urgent", priority="critical")
        [event] = await requeued.wait()
        assert event.data == {
            "id": low,
            "name": "background",
            "queue": "default",
            "reason": "preempted",
        }
        await scheduler.wait(high, timeout=5)
        assert (await scheduler.wait(low, timeout=5))["result"] == "resumed"
        assert order == ["background#1", "urgent", "background#2"]
        assert scheduler.get(low)["retries"] == 0  # preemption spends no retry


async def test_a_function_registered_later_picks_up_waiting_tasks(scheduler_kernel: Any) -> None:
    async with scheduler_kernel(require_handler=False) as (k, scheduler):
        task_id = await scheduler.add("later", 5)
        assert scheduler.get(task_id)["state"] == "queued"
        scheduler.register("later", lambda n: n + 1, mode="inline")
        assert (await scheduler.wait(task_id, timeout=5))["result"] == 6
