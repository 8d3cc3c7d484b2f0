"""``orrery tasks ...`` against a real daemon serving the scheduler's HTTP routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from orrery.kernel import Kernel
from orrery.kernel.daemon import Daemon
from orrery.sdk.client import ApiError, connect
from orrery_scheduler import SCHEDULER, Job, Scheduler, SchedulerPlugin
from orrery_scheduler.cli import app
from typer.testing import CliRunner


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Path, Scheduler]]:
    state_dir = tmp_path / "state"
    kernel = Kernel(
        state_dir=state_dir,
        plugins=[SchedulerPlugin],
        entry_points=False,
        watch=False,
        env={},
        config={"plugins": {"scheduler": {"persistence": "memory"}}},
    )
    d = Daemon(kernel, port=0, grace_period=2.0)
    await d.start()
    try:
        yield state_dir, kernel.manager.services.get(SCHEDULER)
    finally:
        await d.stop()


def api(state_dir: Path) -> Callable[..., Any]:
    """``await call(method, path, body=None)`` on the scheduler's routes, in a thread."""
    client = connect(state_dir, None, None)

    def call(method: str, path: str, body: Any = None) -> Any:
        return asyncio.to_thread(client.call, method, f"/v1/plugins/scheduler{path}", body)

    return call


async def tasks_cli(state_dir: Path, *args: str) -> Any:
    """Run the CLI in a thread (it blocks on HTTP while the daemon runs on this loop)."""
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, app, [*args, "--state-dir", str(state_dir)], catch_exceptions=False
    )
    return result


async def test_add_show_ls_stats_as_json(daemon: tuple[Path, Scheduler]) -> None:
    state_dir, scheduler = daemon
    scheduler.register("echo", lambda data: data, mode="inline")
    added = await tasks_cli(state_dir, "add", "echo", '{"n": 1}', "--priority", "high", "--json")
    assert added.exit_code == 0, added.output
    task = json.loads(added.output)
    assert task["priority"] == 1
    await scheduler.wait(task["id"], timeout=5)
    shown = json.loads((await tasks_cli(state_dir, "show", task["id"], "--json")).output)
    assert shown["state"] == "completed" and shown["result"] == {"n": 1}
    listed = json.loads((await tasks_cli(state_dir, "ls", "--json")).output)
    assert [t["id"] for t in listed] == [task["id"]]
    stats = json.loads((await tasks_cli(state_dir, "stats", "--json")).output)
    assert stats["by_state"] == {"completed": 1}
    table = await tasks_cli(state_dir, "ls")
    assert task["id"] in table.output and "completed" in table.output


async def test_steering_and_errors(daemon: tuple[Path, Scheduler]) -> None:
    state_dir, scheduler = daemon
    scheduler.register("noop", lambda: None, mode="inline")
    added = await tasks_cli(state_dir, "add", "noop", "--delay", "3600", "--json")
    task_id = json.loads(added.output)["id"]
    for action, state in (("pause", "paused"), ("resume", "scheduled"), ("cancel", "cancelled")):
        result = await tasks_cli(state_dir, action, task_id, "--json")
        assert json.loads(result.output)["state"] == state
    retried = await tasks_cli(state_dir, "retry", task_id, "--json")
    assert json.loads(retried.output)["state"] in ("queued", "running", "completed")
    missing = await tasks_cli(state_dir, "cancel", "nope")
    assert missing.exit_code == 1 and "no task 'nope'" in missing.output
    unknown = await tasks_cli(state_dir, "add", "typo")
    assert unknown.exit_code == 1 and "register it with" in unknown.output


async def test_follow_shows_a_progress_bar(daemon: tuple[Path, Scheduler]) -> None:
    state_dir, scheduler = daemon
    gate = asyncio.Event()

    async def slow(job: Job) -> str:
        job.progress(40, "loading")
        await gate.wait()
        return "ok"

    scheduler.register("slow", slow)
    task_id = await scheduler.add("slow")
    follower = asyncio.ensure_future(tasks_cli(state_dir, "show", task_id, "--follow"))
    while scheduler.get(task_id).get("progress") is None:
        await asyncio.sleep(0)
    gate.set()
    result = await follower
    assert result.exit_code == 0
    assert "100.0%" in result.output and "completed" in result.output


async def test_no_daemon_says_how_to_start_one(tmp_path: Path) -> None:
    result = await tasks_cli(tmp_path, "ls")
    assert result.exit_code == 2  # a connection problem, not a failed operation
    assert "orrery daemon --state-dir" in result.output
    assert len(result.output.strip().splitlines()) == 1  # one line, no box


async def test_http_routes_for_schedules_and_queues(daemon: tuple[Path, Scheduler]) -> None:
    state_dir, scheduler = daemon
    scheduler.register("noop", lambda: None, mode="inline")
    call = api(state_dir)

    created = await call("POST", "/schedules", {"name": "noop", "every": 3600, "id": "hourly"})
    assert created["id"] == "hourly" and created["next_fire"] is not None
    assert [s["id"] for s in await call("GET", "/schedules")] == ["hourly"]
    assert await call("DELETE", "/schedules/hourly") is True
    assert await call("GET", "/functions") == ["noop"]
    assert await call("POST", "/queues/default/pause", {}) == {
        "queue": "default",
        "paused": True,
    }
    task = await call("POST", "/tasks", {"name": "noop"})
    assert (await call("GET", f"/tasks/{task['id']}"))["state"] == "queued"
    await call("POST", "/queues/default/resume", {})
    await scheduler.wait(task["id"], timeout=5)
    assert (await call("POST", "/clear", {"states": ["completed"]})) == {"cleared": 1}


async def test_http_errors_are_4xx_with_the_reason(daemon: tuple[Path, Scheduler]) -> None:
    state_dir, scheduler = daemon
    scheduler.register("noop", lambda: None, mode="inline")
    call = api(state_dir)

    with pytest.raises(ApiError, match="daemon answered 404: UnknownTask"):
        await call("GET", "/tasks/ghost")
    with pytest.raises(ApiError, match="daemon answered 400: .*priority"):
        await call("POST", "/tasks", {"name": "noop", "priority": "urgent!"})
    task = await call("POST", "/tasks", {"name": "noop", "delay": 3600})
    await call("POST", f"/tasks/{task['id']}/cancel", {})
    with pytest.raises(ApiError, match="daemon answered 409: InvalidTransition"):
        await call("POST", f"/tasks/{task['id']}/pause", {})


async def test_follow_on_a_failing_task_prints_the_reason(
    daemon: tuple[Path, Scheduler],
) -> None:
    state_dir, scheduler = daemon

    def broken() -> None:
        raise ValueError("the input file is missing")

    scheduler.register("broken", broken, mode="inline")
    result = await tasks_cli(state_dir, "add", "broken", "--retries", "0", "--follow")
    assert result.exit_code == 1
    assert "failed: ValueError: the input file is missing" in result.output
    task_id = scheduler.tasks()[0]["id"]
    shown = await tasks_cli(state_dir, "show", task_id, "--follow")
    assert shown.exit_code == 1 and "the input file is missing" in shown.output


async def test_an_unknown_state_is_refused(daemon: tuple[Path, Scheduler]) -> None:
    state_dir, _ = daemon
    result = await tasks_cli(state_dir, "ls", "--state", "runing")
    assert result.exit_code == 2 and "runing" in result.output
    ok = await tasks_cli(state_dir, "ls", "--state", "running", "--json")
    assert ok.exit_code == 0 and json.loads(ok.output) == []


async def test_functions_and_schedules_from_the_command_line(
    daemon: tuple[Path, Scheduler],
) -> None:
    state_dir, scheduler = daemon
    scheduler.register("report.build", lambda: None, mode="inline")
    listed = await tasks_cli(state_dir, "functions", "--json")
    assert json.loads(listed.output) == ["report.build"]
    assert (await tasks_cli(state_dir, "functions")).output.strip() == "report.build"
    made = await tasks_cli(
        state_dir, "schedule", "report.build", "--every", "3600", "--id", "hourly", "--json"
    )
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["id"] == "hourly"
    cron = await tasks_cli(state_dir, "schedule", "report.build", "--cron", "0 3 * * *")
    assert cron.exit_code == 0 and "next fire" in cron.output
    shown = json.loads((await tasks_cli(state_dir, "schedules", "--json")).output)
    assert {s["id"] for s in shown} == {"hourly", *(s["id"] for s in scheduler.schedules())}
    assert len(scheduler.schedules()) == 2
    table = await tasks_cli(state_dir, "schedules")
    assert "hourly" in table.output and "every 3600s" in table.output
    gone = await tasks_cli(state_dir, "unschedule", "hourly")
    assert gone.exit_code == 0
    assert "hourly" not in {s["id"] for s in scheduler.schedules()}
    missing = await tasks_cli(state_dir, "unschedule", "hourly")
    assert missing.exit_code == 1 and "no schedule 'hourly'" in missing.output
    neither = await tasks_cli(state_dir, "schedule", "report.build")
    assert neither.exit_code == 2 and "--cron" in neither.output


async def test_tables_fit_80_columns_unless_wide(daemon: tuple[Path, Scheduler]) -> None:
    state_dir, scheduler = daemon
    long_name = "reports.quarterly.build_the_very_long_named_report_for_finance"
    scheduler.register(long_name, lambda: None, mode="inline")
    task_id = await scheduler.add(long_name, delay=3600)
    narrow = await tasks_cli(state_dir, "ls")
    assert max(len(line) for line in narrow.output.splitlines()) <= 80
    assert long_name not in narrow.output
    wide = await tasks_cli(state_dir, "ls", "--wide")
    assert long_name in wide.output and task_id in wide.output
