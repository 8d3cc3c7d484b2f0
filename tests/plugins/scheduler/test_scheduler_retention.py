"""Journal retention: operations covered by an old enough snapshot are deleted, restarts
still see every task, and a node that missed deleted operations stops scheduling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from orrery.kernel.storage import SQLiteStorage
from orrery.sdk.testing import ManualClock
from orrery_scheduler import FellBehind, SchedulerPlugin, SchedulerStopped
from orrery_scheduler._log import JournalLog

STREAM = "tasks.default"


async def _versions(state: Path) -> list[int]:
    async with SQLiteStorage(state / "orrery.db") as storage:
        return [e.version async for e in storage.journal("scheduler").read(STREAM)]


async def test_a_peer_that_missed_deleted_operations_finds_the_gap(tmp_path: Path) -> None:
    async with SQLiteStorage(tmp_path / "shared.db") as storage:
        journal = storage.journal("scheduler")
        writer = JournalLog(journal, STREAM, 100, retention=0.0)
        lagging = JournalLog(journal, STREAM, 100)
        for n in range(3):
            await writer.append([["node", f"a/{n}", 0.0, "start"]])
        await writer.save_snapshot({"tasks": []})  # retention 0: versions 1-2 go at once
        with pytest.raises(
            FellBehind, match="up to version 0, but the journal now continues at version 3"
        ) as caught:
            await lagging.catch_up()
        assert "restart the scheduler on this node" in str(caught.value)
        fresh = JournalLog(journal, STREAM, 100)
        assert await fresh.load() == ({"tasks": []}, [])
        assert fresh.version == 3


async def test_old_operations_are_deleted_and_a_restart_sees_every_task(
    scheduler_kernel: Any, clock: ManualClock, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = {
        "persistence": "journal",
        "state_dir": state,
        "snapshot_every": 100,
        "journal_retention": 60.0,
    }
    async with scheduler_kernel(**config) as (k, scheduler):
        scheduler.register("noop", lambda: None, mode="inline")
        for _ in range(4):
            ids = await scheduler.add_many([("noop", n) for n in range(100)])
            for task_id in ids:
                await scheduler.wait(task_id, timeout=5)
            clock.advance(61)  # the snapshots taken so far are now old enough to cut at
        await scheduler.pause_queue("default")
        waiting = await scheduler.add_many([("noop", n) for n in range(30)])
    kept = await _versions(state)
    assert kept[0] > 1, "nothing was deleted"
    assert kept == list(range(kept[0], kept[-1] + 1))
    async with scheduler_kernel(**config) as (k, scheduler):
        assert scheduler.stats()["by_state"] == {"completed": 400, "queued": 30}
        scheduler.register("noop", lambda: None, mode="inline")
        await scheduler.resume_queue("default")
        for task_id in waiting:
            assert (await scheduler.wait(task_id, timeout=5))["state"] == "completed"


async def test_without_retention_nothing_is_deleted(
    scheduler_kernel: Any, clock: ManualClock, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = {
        "persistence": "journal",
        "state_dir": state,
        "snapshot_every": 100,
        "journal_retention": None,
    }
    async with scheduler_kernel(**config) as (k, scheduler):
        scheduler.register("noop", lambda: None, mode="inline")
        ids = await scheduler.add_many([("noop", n) for n in range(300)])
        for task_id in ids:
            await scheduler.wait(task_id, timeout=5)
        clock.advance(10_000)
        await scheduler.add("noop")
    assert (await _versions(state))[0] == 1


async def test_a_node_that_fell_behind_stops_scheduling(
    scheduler_kernel: Any, tmp_path: Path
) -> None:
    config = {
        "persistence": "journal",
        "state_dir": tmp_path / "state",
        "snapshot_every": 100,
        "journal_retention": 0.0,
    }
    async with scheduler_kernel(**config) as (k, scheduler):
        scheduler.register("noop", lambda: None, mode="inline")
        for task_id in await scheduler.add_many([("noop", n) for n in range(250)]):
            await scheduler.wait(task_id, timeout=5)
        # As if this node had stalled before the snapshots were cut and just woke up.
        scheduler._core.oplog.version = 1
        with pytest.raises(FellBehind):
            await scheduler.sync()
        with pytest.raises(SchedulerStopped, match="fell further behind than journal_retention"):
            await scheduler.add("noop")
        health = (await k.kernel.health())["scheduler"]
        assert health["ok"] is False and "journal_retention" in health["reason"]


@pytest.mark.parametrize("value", [-1, "an hour"])
async def test_a_bad_retention_is_refused_naming_the_field(orrery_kernel: Any, value: Any) -> None:
    config = {"plugins": {"scheduler": {"journal_retention": value}}}
    async with orrery_kernel(SchedulerPlugin, config=config) as k:
        info = k.plugins["scheduler"]
        assert info.state == "failed"
        assert "plugins.scheduler.journal_retention" in (info.error or "")
