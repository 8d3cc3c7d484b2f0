"""Durable scheduling: tasks and schedules survive a restart (two kernels on the same
state directory, one after the other); cron never fires a time twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from orrery.sdk.testing import ManualClock


async def test_queued_and_scheduled_tasks_survive_a_restart(
    scheduler_kernel: Any, clock: ManualClock, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with scheduler_kernel(persistence="journal", state_dir=state) as (k, scheduler):
        scheduler.register("noop", lambda: None, mode="inline")
        await scheduler.pause_queue("default")
        queued = [await scheduler.add("noop", n) for n in range(3)]
        later = await scheduler.add("noop", 3, delay=3600, priority="high")
        paused = await scheduler.add("noop", 4, paused=True)
        assert scheduler.stats()["by_state"] == {"queued": 3, "scheduled": 1, "paused": 1}
    async with scheduler_kernel(persistence="journal", state_dir=state) as (k, scheduler):
        seen: list[int] = []
        scheduler.register("noop", lambda n: seen.append(n), mode="inline")
        assert scheduler.get(later)["priority"] == 1
        assert scheduler.get(paused)["state"] == "paused"
        await scheduler.resume_queue("default")
        for task_id in queued:
            await scheduler.wait(task_id, timeout=5)
        assert sorted(seen) == [0, 1, 2]
        clock.advance(3600)
        assert (await scheduler.wait(later, timeout=5))["state"] == "completed"


async def test_finished_tasks_and_results_survive(scheduler_kernel: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with scheduler_kernel(persistence="journal", state_dir=state) as (k, scheduler):
        scheduler.register("answer", lambda: {"value": 42}, mode="inline")
        task_id = await scheduler.add("answer")
        await scheduler.wait(task_id, timeout=5)
    async with scheduler_kernel(persistence="journal", state_dir=state) as (k, scheduler):
        assert scheduler.get(task_id)["result"] == {"value": 42}


async def test_cron_never_fires_twice_across_restarts(
    scheduler_kernel: Any, clock: ManualClock, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    fired: list[str] = []
    for round_ in range(3):
        async with scheduler_kernel(persistence="journal", state_dir=state) as (k, scheduler):
            scheduler.register("tick", lambda job: fired.append(job.id), mode="inline")
            # A program declares its schedules at every start; the fire history stays.
            await scheduler.schedule("tick", every=60, id="ticker", misfire="all")
            done = k.expect("task.completed")
            clock.advance(60)
            await done.wait()
        assert len(fired) == round_ + 1
    assert len(set(fired)) == 3


@pytest.mark.parametrize(("policy", "runs"), [("skip", 0), ("once", 1), ("all", 5)])
async def test_misfire_policy_after_downtime(
    scheduler_kernel: Any, clock: ManualClock, tmp_path: Path, policy: str, runs: int
) -> None:
    state = tmp_path / "state"
    config = {"persistence": "journal", "state_dir": state}
    async with scheduler_kernel(**config) as (k, scheduler):
        scheduler.register("tick", lambda: None, mode="inline")
        await scheduler.schedule("tick", every=60, id="ticker", misfire=policy, grace=1)
    clock.advance(5 * 60 + 30)  # five fire times pass while nothing runs
    async with scheduler_kernel(**config) as (k, scheduler):
        scheduler.register("tick", lambda: None, mode="inline")
        if runs:
            done = k.expect("task.completed", count=runs)
            await done.wait()
        await k.request("scheduler.stats", {})
        assert scheduler.stats()["by_state"].get("completed", 0) == runs
        [view] = scheduler.schedules()
        assert view["next_fire"] == view["start"] + 6 * 60


async def test_restart_from_a_snapshot(scheduler_kernel: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = {"persistence": "journal", "state_dir": state, "snapshot_every": 100}
    async with scheduler_kernel(**config) as (k, scheduler):
        scheduler.register("noop", lambda: None, mode="inline")
        ids = await scheduler.add_many([("noop", n) for n in range(250)])
        for task_id in ids:
            await scheduler.wait(task_id, timeout=5)
        await scheduler.pause_queue("default")
        waiting = await scheduler.add_many([("noop", n) for n in range(30)])
    async with scheduler_kernel(**config) as (k, scheduler):
        stats = scheduler.stats()["by_state"]
        assert stats == {"completed": 250, "queued": 30}
        scheduler.register("noop", lambda: None, mode="inline")
        await scheduler.resume_queue("default")
        for task_id in waiting:
            await scheduler.wait(task_id, timeout=5)
