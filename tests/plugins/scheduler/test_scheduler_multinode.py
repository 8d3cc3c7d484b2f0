"""Several kernels sharing one queue through one journal: each task runs once per
attempt, cron fires once per fire time, and quotas hold across nodes."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from orrery.sdk.testing import ManualClock
from orrery_scheduler import SCHEDULER, Job, SchedulerPlugin

from .conftest import PG_DSN


def _config(cluster: str = "default", **extra: Any) -> dict[str, Any]:
    return {"persistence": "journal", "poll_interval": 0.01, "cluster": cluster, **extra}


def _shared_db(config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """``config`` with one SQLite file for every node (each has its own state dir)."""
    storage = {"path": str(tmp_path / "shared.db"), **config.get("storage", {})}
    return {**config, "storage": storage}


async def _run_shared_queue(orrery_kernel: Any, tmp_path: Path, kernel_config: Any) -> None:
    runs: list[tuple[str, str, int]] = []
    config = _shared_db(kernel_config, tmp_path)
    async with (
        orrery_kernel(SchedulerPlugin, config=config, state_dir=tmp_path / "a", node_id="a") as ka,
        orrery_kernel(SchedulerPlugin, config=config, state_dir=tmp_path / "b", node_id="b") as kb,
    ):
        schedulers = [ka.service(SCHEDULER), kb.service(SCHEDULER)]
        for scheduler in schedulers:

            async def work(job: Job, node: str = scheduler.node) -> None:
                runs.append((node, job.id, job.attempt))
                await asyncio.sleep(0.001)  # simulated work, so both nodes get some

            scheduler.register("work", work)
        batches = [await s.add_many([("work", None)] * 150) for s in schedulers]
        for scheduler, ids in zip(schedulers, batches, strict=True):
            for task_id in ids:
                assert (await scheduler.wait(task_id, timeout=30))["state"] == "completed"
    all_ids = [i for ids in batches for i in ids]
    per_task = Counter(task_id for _, task_id, _ in runs)
    assert sorted(per_task) == sorted(all_ids)
    assert set(per_task.values()) == {1}, "a task ran twice without a lost lease"
    assert {node for node, _, _ in runs} == {"a", "b"}


async def test_multinode_sqlite_each_task_runs_once(orrery_kernel: Any, tmp_path: Path) -> None:
    await _run_shared_queue(orrery_kernel, tmp_path, {"plugins": {"scheduler": _config()}})


async def test_multinode_postgres_each_task_runs_once(orrery_kernel: Any, tmp_path: Path) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    try:
        connection = await asyncpg.connect(PG_DSN, timeout=2)
    except (OSError, asyncpg.PostgresError) as e:
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {e}")
    await connection.close()
    config = {
        "storage": {"backend": "postgres", "dsn": PG_DSN},
        "plugins": {"scheduler": _config(cluster=f"t{uuid.uuid4().hex[:12]}")},
    }
    await _run_shared_queue(orrery_kernel, tmp_path, config)


async def test_multinode_cron_fires_once_per_time(
    orrery_kernel: Any, clock: ManualClock, tmp_path: Path
) -> None:
    fired: list[float | None] = []
    ticked = asyncio.Event()

    def tick(job: Job) -> None:
        fired.append(job.scheduled_for)
        ticked.set()

    config = _shared_db({"plugins": {"scheduler": {**_config(), "jitter": 0.0}}}, tmp_path)
    async with (
        orrery_kernel(
            SchedulerPlugin, config=config, clock=clock, state_dir=tmp_path / "a", node_id="a"
        ) as ka,
        orrery_kernel(
            SchedulerPlugin, config=config, clock=clock, state_dir=tmp_path / "b", node_id="b"
        ) as kb,
    ):
        sa, sb = ka.service(SCHEDULER), kb.service(SCHEDULER)
        for scheduler in (sa, sb):
            scheduler.register("tick", tick, mode="inline")
            await scheduler.schedule("tick", every=60, id="ticker")
        for _ in range(3):
            ticked.clear()
            clock.advance(60)
            await asyncio.wait_for(ticked.wait(), 10)
        for scheduler in (sa, sb):
            await scheduler.sync()
            fires = sorted(t["options"]["fire_time"] for t in scheduler.tasks(name="tick"))
            assert fires == [clock.now() - 120, clock.now() - 60, clock.now()]
    assert len(fired) == len(set(fired)) == 3


async def test_multinode_quota_holds_across_nodes(orrery_kernel: Any, tmp_path: Path) -> None:
    config = _shared_db({"plugins": {"scheduler": _config(quotas={"team": {"cpu": 2}})}}, tmp_path)
    running: set[str] = set()
    peak = 0
    release = asyncio.Event()
    two_running = asyncio.Event()
    async with (
        orrery_kernel(SchedulerPlugin, config=config, state_dir=tmp_path / "a", node_id="a") as ka,
        orrery_kernel(SchedulerPlugin, config=config, state_dir=tmp_path / "b", node_id="b") as kb,
    ):
        schedulers = [ka.service(SCHEDULER), kb.service(SCHEDULER)]

        async def work(job: Job) -> None:
            nonlocal peak
            running.add(job.id)
            peak = max(peak, len(running))
            if len(running) == 2:
                two_running.set()
            await release.wait()
            running.discard(job.id)

        for scheduler in schedulers:
            scheduler.register("work", work)
        ids = await schedulers[0].add_many(
            [("work", None, {"group": "team", "resources": {"cpu": 1}})] * 6
        )
        await asyncio.wait_for(two_running.wait(), 10)
        for scheduler in schedulers:  # the replicated view: two claims, cluster-wide
            await scheduler.sync()
            assert scheduler.stats()["by_state"]["running"] == 2
        assert peak == 2
        release.set()
        for task_id in ids:
            await schedulers[0].wait(task_id, timeout=30)
    assert peak == 2
