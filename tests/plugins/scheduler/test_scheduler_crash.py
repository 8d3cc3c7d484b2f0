"""A kernel process killed with SIGKILL while 1,000 tasks are queued or running loses
none of them: a new kernel on the same state directory completes all."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from orrery_scheduler import SCHEDULER, Job, SchedulerPlugin

TASKS = 1_000
RUNNING = 50

_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from orrery.kernel import Kernel
    from orrery_scheduler import SCHEDULER

    async def main(state_dir, node_id):
        settings = {"concurrency": %(running)d, "node_id": node_id or None}
        config = {"plugins": {"scheduler": settings}}
        async with Kernel(state_dir=state_dir, config=config, watch=False) as kernel:
            scheduler = kernel.manager.services.get(SCHEDULER)

            async def work(job):
                print("RUN", job.id, flush=True)
                await asyncio.Event().wait()  # busy until killed

            scheduler.register("work", work)
            for start in range(0, %(tasks)d, 100):
                await scheduler.add_many([("work", start + i) for i in range(100)])
            print("QUEUED", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
) % {"running": RUNNING, "tasks": TASKS}


async def _start_and_kill(state_dir: Path, node_id: str = "") -> set[str]:
    """Run the child until all tasks are stored and RUNNING of them run; SIGKILL it."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(state_dir), node_id, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    running: set[str] = set()
    queued = False
    try:
        while not (queued and len(running) >= RUNNING):
            line = (await asyncio.wait_for(child.stdout.readline(), 60)).decode()
            assert line, "the child kernel exited early"
            if line.startswith("RUN "):
                running.add(line.split()[1])
            elif line.startswith("QUEUED"):
                queued = True
    finally:
        child.kill()  # SIGKILL: no orrery_stop, no flush
        await child.wait()
    return running


async def test_crash_sigkill_loses_no_task(orrery_kernel: Any, tmp_path: Path) -> None:
    """The restarted kernel has the same node id: it re-queues the dead session's
    running tasks at once."""
    state_dir = tmp_path / "state"
    was_running = await _start_and_kill(state_dir)
    assert len(was_running) == RUNNING
    await _complete_all(orrery_kernel, state_dir, was_running, {})


async def test_crash_another_node_takes_over_after_the_lease(
    orrery_kernel: Any, tmp_path: Path
) -> None:
    """A different node re-queues the dead node's running tasks once its heartbeat is
    older than the lease."""
    state_dir = tmp_path / "state"
    was_running = await _start_and_kill(state_dir, node_id="doomed")
    config = {"node_id": "survivor", "lease": 1.0, "poll_interval": 0.02}
    await _complete_all(orrery_kernel, state_dir, was_running, config)


async def _complete_all(
    orrery_kernel: Any, state_dir: Path, was_running: set[str], config: dict[str, Any]
) -> None:
    runs: Counter[str] = Counter()
    attempts: dict[str, int] = {}

    async def work(data: int, job: Job) -> int:
        runs[job.id] += 1
        attempts[job.id] = job.attempt
        return data

    async with orrery_kernel(SchedulerPlugin, state_dir=state_dir, config=config) as k:
        scheduler = k.service(SCHEDULER)
        scheduler.register("work", work)
        known = scheduler.tasks(limit=10_000)
        assert len(known) == TASKS
        for task in known:
            done = await scheduler.wait(task["id"], timeout=60)
            assert done["state"] == "completed"
    assert len(runs) == TASKS and set(runs.values()) == {1}
    # Tasks running at the kill run again as a new attempt; the others run first time.
    assert {attempts[t] for t in was_running} == {2}
    assert {a for t, a in attempts.items() if t not in was_running} == {1}
