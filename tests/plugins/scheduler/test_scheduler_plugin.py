"""The scheduler in a real kernel: running tasks, events, progress, retries, timeouts,
steering, statistics and the bus API (time from a manual clock)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from orrery.sdk.testing import ManualClock
from orrery_scheduler import (
    SCHEDULER,
    InvalidTransition,
    Job,
    UnknownHandler,
    current_job,
)


async def test_runs_a_task_and_publishes_its_lifecycle(scheduler_kernel: Any) -> None:
    async with scheduler_kernel() as (k, scheduler):

        async def double(data: dict[str, int]) -> int:
            return data["n"] * 2

        scheduler.register("math.double", double)
        events = k.expect("task.*", count=3)
        task_id = await scheduler.add("math.double", {"n": 21})
        done = await scheduler.wait(task_id, timeout=5)
        assert done["state"] == "completed" and done["result"] == 42
        assert [e.type for e in await events.wait()] == [
            "task.added",
            "task.started",
            "task.completed",
        ]
        assert scheduler.get(task_id)["attempt"] == 1


async def test_progress_is_published_and_shown(scheduler_kernel: Any) -> None:
    async with scheduler_kernel() as (k, scheduler):
        release = asyncio.Event()

        async def work(job: Job) -> str:
            job.progress(50, "half way")
            await release.wait()
            return "ok"

        scheduler.register("work", work)
        progress = k.expect("task.progress")
        task_id = await scheduler.add("work")
        [event] = await progress.wait()
        assert event.data == {"id": task_id, "name": "work", "pct": 50.0, "message": "half way"}
        assert scheduler.get(task_id)["progress"] == {"pct": 50.0, "message": "half way"}
        release.set()
        assert (await scheduler.wait(task_id, timeout=5))["result"] == "ok"


async def test_failures_retry_with_exponential_backoff(
    scheduler_kernel: Any, clock: ManualClock
) -> None:
    async with scheduler_kernel(backoff=10.0) as (k, scheduler):
        calls: list[int] = []

        async def flaky(job: Job) -> str:
            calls.append(job.attempt)
            if len(calls) < 3:
                raise RuntimeError("try again")
            return "done"

        scheduler.register("flaky", flaky)
        retries = k.expect("task.retry", count=2)
        start = clock.now()
        task_id = await scheduler.add("flaky", retries=3)
        first = k.expect("task.retry")
        [event] = await first.wait()
        assert event.data["retry_at"] == pytest.approx(start + 10.0)
        assert scheduler.get(task_id)["state"] == "scheduled"
        second = k.expect("task.retry")
        clock.advance(10)
        [event] = await second.wait()
        assert event.data["retry_at"] == pytest.approx(start + 10.0 + 20.0)  # doubled
        assert event.data["error"] == "RuntimeError: try again"
        clock.advance(20)
        done = await scheduler.wait(task_id, timeout=5)
        assert done["state"] == "completed" and done["retries"] == 2
        assert calls == [1, 2, 3]
        assert len(await retries.wait()) == 2


async def test_a_task_out_of_retries_fails(scheduler_kernel: Any) -> None:
    async with scheduler_kernel() as (k, scheduler):

        def broken() -> None:
            raise ValueError("bad input")

        scheduler.register("broken", broken)
        failed = k.expect("task.failed")
        task_id = await scheduler.add("broken", retries=0)
        [event] = await failed.wait()
        assert event.data["error"] == "ValueError: bad input"
        assert scheduler.get(task_id)["state"] == "failed"
        again = await scheduler.retry(task_id)
        assert again["state"] in ("queued", "running", "failed")


async def test_timeout_stops_the_attempt(scheduler_kernel: Any, clock: ManualClock) -> None:
    async with scheduler_kernel() as (k, scheduler):
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        scheduler.register("hang", hang)
        task_id = await scheduler.add("hang", timeout=5, retries=0)
        await started.wait()
        failed = k.expect("task.failed")
        clock.advance(5)
        [event] = await failed.wait()
        assert event.data["error"] == "timed out after 5s"
        assert scheduler.get(task_id)["state"] == "failed"


async def test_cancel_pause_resume(scheduler_kernel: Any, clock: ManualClock) -> None:
    async with scheduler_kernel() as (k, scheduler):
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def long() -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        scheduler.register("long", long)
        running = await scheduler.add("long")
        await started.wait()
        waiting = await scheduler.add("long", delay=60)
        assert scheduler.get(waiting)["state"] == "scheduled"
        assert (await scheduler.pause(waiting))["state"] == "paused"
        assert (await scheduler.resume(waiting))["state"] == "scheduled"
        gone = k.expect("task.cancelled", count=2)
        await scheduler.cancel(running)
        await scheduler.cancel(waiting)
        await gone.wait()
        await cancelled.wait()
        assert scheduler.get(running)["state"] == "cancelled"
        with pytest.raises(InvalidTransition, match="only paused tasks can be resumed"):
            await scheduler.resume(running)


async def test_pausing_a_running_task_stops_and_holds_it(scheduler_kernel: Any) -> None:
    async with scheduler_kernel() as (k, scheduler):
        runs: list[int] = []

        async def long(job: Job) -> str:
            runs.append(job.attempt)
            if len(runs) == 1:
                await asyncio.Event().wait()
            return "second run"

        scheduler.register("long", long)
        task_id = await scheduler.add("long")
        paused = k.expect("task.paused")
        while not runs:
            await asyncio.sleep(0)
        await scheduler.pause(task_id)
        await paused.wait()
        assert scheduler.get(task_id)["state"] == "paused"
        await scheduler.resume(task_id)
        assert (await scheduler.wait(task_id, timeout=5))["result"] == "second run"
        assert runs == [1, 2]


async def test_priorities_run_most_urgent_first(scheduler_kernel: Any) -> None:
    async with scheduler_kernel(concurrency=1) as (k, scheduler):
        order: list[str] = []
        scheduler.register("record", lambda data: order.append(data), mode="inline")
        await scheduler.pause_queue("default")
        for name in ("background", "low", "normal", "high", "critical"):
            await scheduler.add("record", name, priority=name)
        done = k.expect("task.completed", count=5)
        await scheduler.resume_queue("default")
        await done.wait()
        assert order == ["critical", "high", "normal", "low", "background"]


async def test_aging_lets_a_waiting_low_priority_task_overtake(
    scheduler_kernel: Any, clock: ManualClock
) -> None:
    async with scheduler_kernel(concurrency=1, aging=10.0) as (k, scheduler):
        order: list[str] = []
        scheduler.register("record", lambda data: order.append(data), mode="inline")
        await scheduler.pause_queue("default")
        await scheduler.add("record", "old background", priority="background")
        clock.advance(40)  # four aging steps: background (4) has reached level 0
        await scheduler.add("record", "new high", priority="high")
        done = k.expect("task.completed", count=2)
        await scheduler.resume_queue("default")
        await done.wait()
        assert order == ["old background", "new high"]


async def test_earliest_deadline_first_within_a_priority(
    scheduler_kernel: Any, clock: ManualClock
) -> None:
    async with scheduler_kernel(concurrency=1) as (k, scheduler):
        order: list[str] = []
        scheduler.register("record", lambda data: order.append(data), mode="inline")
        await scheduler.pause_queue("default")
        await scheduler.add("record", "no deadline")
        await scheduler.add("record", "late", deadline_in=300)
        await scheduler.add("record", "soon", deadline_in=30)
        await scheduler.add("record", "urgent", priority="high", deadline_in=600)
        done = k.expect("task.completed", count=4)
        await scheduler.resume_queue("default")
        await done.wait()
        assert order == ["urgent", "soon", "late", "no deadline"]


async def test_a_missed_deadline_is_published_once(
    scheduler_kernel: Any, clock: ManualClock
) -> None:
    async with scheduler_kernel() as (k, scheduler):
        scheduler.register("noop", lambda: None, mode="inline")
        await scheduler.pause_queue("default")
        task_id = await scheduler.add("noop", deadline_in=5)
        missed = k.expect("task.deadline_missed")
        clock.advance(6)
        [event] = await missed.wait()
        assert event.data["id"] == task_id
        assert scheduler.get(task_id)["deadline_missed"] is True


async def test_unknown_function_and_idempotency_key(scheduler_kernel: Any) -> None:
    async with scheduler_kernel() as (k, scheduler):
        with pytest.raises(UnknownHandler, match="register it with"):
            await scheduler.add("nope")
        scheduler.register("noop", lambda: None, mode="inline")
        await scheduler.pause_queue("default")
        first = await scheduler.add("noop", idempotency_key="order-7")
        second = await scheduler.add("noop", idempotency_key="order-7")
        assert first == second
        assert scheduler.stats()["by_state"] == {"queued": 1}


async def test_sync_functions_run_in_a_thread_with_their_job(scheduler_kernel: Any) -> None:
    async with scheduler_kernel() as (k, scheduler):

        def blocking(data: str) -> str:
            job = current_job.get()
            job.progress(100, "done")
            return f"{data} from {job.name}"

        scheduler.register("blocking", blocking)
        task_id = await scheduler.add("blocking", "hello")
        assert (await scheduler.wait(task_id, timeout=5))["result"] == "hello from blocking"


async def test_statistics_and_clear(scheduler_kernel: Any, clock: ManualClock) -> None:
    async with scheduler_kernel() as (k, scheduler):
        scheduler.register("noop", lambda: None, mode="inline")
        ids = [await scheduler.add("noop") for _ in range(5)]
        await scheduler.add("noop", delay=100)
        for task_id in ids:
            await scheduler.wait(task_id, timeout=5)
        stats = scheduler.stats()
        assert stats["by_state"]["completed"] == 5
        assert stats["by_state"]["scheduled"] == 1
        assert set(stats["wait_seconds"]) >= {"p50", "p90", "p99", "max"}
        assert stats["run_seconds"]["p50"] == 0.0  # the manual clock did not move
        assert await scheduler.clear() == 5
        assert scheduler.stats()["by_state"].get("completed", 0) == 0


async def test_bus_api(scheduler_kernel: Any) -> None:
    async with scheduler_kernel() as (k, scheduler):
        scheduler.register("echo", lambda data: data, mode="inline")
        added = await k.request("scheduler.add", {"name": "echo", "data": [1, 2], "wait": 5})
        assert added["state"] == "completed" and added["result"] == [1, 2]
        listed = await k.request("scheduler.list", {"state": "completed"})
        assert [t["id"] for t in listed] == [added["id"]]
        shown = await k.request("scheduler.get", {"id": added["id"]})
        assert shown["result"] == [1, 2]
        error = await k.request("scheduler.cancel", {"id": "missing"})
        assert error["error"]["type"] == "UnknownTask"
        bad = await k.request("scheduler.add", {"name": "echo", "priority": "urgent!"})
        assert "priority" in bad["error"]["message"]
        stats = await k.request("scheduler.stats", {})
        assert stats["by_state"]["completed"] == 1


async def test_hot_reload_in_memory_mode_keeps_waiting_tasks(
    orrery_kernel: Any, orrery_plugins_dir: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = orrery_plugins_dir(
        "sched.py",
        """
        from orrery_scheduler import SchedulerPlugin

        class Scheduler(SchedulerPlugin):
            name = "scheduler"
        """,
    )
    config = {"plugins": {"scheduler": {"persistence": "memory"}}}
    async with orrery_kernel(plugins_dirs=[path.parent], config=config) as k:
        scheduler = k.service(SCHEDULER)
        scheduler.register("noop", lambda: None, mode="inline")
        await scheduler.pause_queue("default")
        ids = [await scheduler.add("noop") for _ in range(3)]
        await k.reload("scheduler")
        fresh = k.service(SCHEDULER)
        assert [fresh.get(i)["state"] for i in ids] == ["queued"] * 3
        assert fresh.functions() == ["noop"]  # registrations move to the new version
        # ...through orrery_handover: the snapshot itself stays plain data.
        assert not [r for r in caplog.records if "not JSON-able" in r.getMessage()]
        await fresh.resume_queue("default")
        for task_id in ids:
            assert (await fresh.wait(task_id, timeout=5))["state"] == "completed"


async def test_another_plugin_registers_functions_through_the_service(
    orrery_kernel: Any,
) -> None:
    from orrery.sdk import Context, Plugin, hookimpl
    from orrery_scheduler import SchedulerPlugin

    class Mailer(Plugin):
        name = "mailer"
        requires = {"scheduler": ""}

        @hookimpl
        async def orrery_start(self, ctx: Context) -> None:
            scheduler = ctx.services.get(SCHEDULER)

            @scheduler.task("mail.send", retries=5, queue="mail")
            async def send(data: dict[str, str]) -> str:
                return f"sent to {data['to']}"

    config = {"plugins": {"scheduler": {"persistence": "memory"}}}
    async with orrery_kernel(SchedulerPlugin, Mailer, config=config) as k:
        k.assert_state("mailer", "active")
        reply = await k.request(
            "scheduler.add", {"name": "mail.send", "data": {"to": "ada"}, "wait": 5}
        )
        assert reply["result"] == "sent to ada"
        assert reply["queue"] == "mail" and reply["max_retries"] == 5


async def test_the_error_is_cleared_when_the_task_runs_again(
    scheduler_kernel: Any, clock: ManualClock
) -> None:
    async with scheduler_kernel(backoff=10.0) as (k, scheduler):
        release = asyncio.Event()
        attempts: list[int] = []

        async def flaky(job: Job) -> str:
            attempts.append(job.attempt)
            if job.attempt == 1:
                raise RuntimeError("first try fails")
            await release.wait()
            return "ok"

        scheduler.register("flaky", flaky)
        retry = k.expect("task.retry")
        task_id = await scheduler.add("flaky", retries=2)
        await retry.wait()
        # Waiting for its retry, the task still says why the last attempt failed...
        assert scheduler.get(task_id)["error"] == "RuntimeError: first try fails"
        started = k.expect("task.started", where=lambda e: e.data.get("attempt") == 2)
        clock.advance(10)
        await started.wait()
        # ...but once it runs again, that error no longer describes it.
        view = scheduler.get(task_id)
        assert view["state"] == "running" and view["error"] is None
        release.set()
        done = await scheduler.wait(task_id, timeout=5)
        assert done["error"] is None and attempts == [1, 2]


async def test_an_unknown_state_filter_is_refused(scheduler_kernel: Any) -> None:
    async with scheduler_kernel(persistence="memory") as (k, scheduler):
        with pytest.raises(ValueError, match="invalid state 'runing'.*running"):
            scheduler.tasks(state="runing")
        reply = await k.request("scheduler.list", {"state": "runing"})
        assert reply["error"]["type"] == "InvalidTaskOptions"
        answer = await k.http("GET", "/v1/plugins/scheduler/tasks", query={"state": "runing"})
        assert answer.status == 400 and "runing" in answer.text
        assert scheduler.tasks(state="running") == []
