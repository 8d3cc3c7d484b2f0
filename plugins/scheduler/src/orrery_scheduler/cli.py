"""``orrery tasks ...``: the scheduler's command line, talking to a running daemon.

Mounted by the kernel CLI through the ``orrery.cli`` entry point ``tasks``; also
runnable on its own as ``python -m orrery_scheduler.cli``. The only module of the
plugin that imports typer and rich; the shared options, exit codes, one-line errors
and 80-column tables come from `orrery.sdk.cli`: exit 0 when the operation succeeded,
1 when it failed (an unknown task, a refused transition, a task followed with
``--follow`` that failed), 2 for a usage or connection problem.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from orrery.sdk import cli
from orrery.sdk.client import DaemonClient
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ._model import STATES

__all__ = ["BASE", "app"]

#: Where the daemon mounts this plugin's routes.
BASE = "/v1/plugins/scheduler"
_FINAL = ("completed", "failed", "cancelled")
_GAVE_UP = ("failed", "cancelled")

app = cli.plugin_app("tasks", help="Background tasks of the scheduler plugin on a running daemon.")

# "--state" accepts the displayed states only: a typo is a usage error, not "no tasks".
State = StrEnum("State", {s: s for s in STATES})  # type: ignore[misc]

Options = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", metavar="KEY=JSON", help="Another task option."),
]
Follow = Annotated[bool, typer.Option("--follow", "-f", help="Show progress until it ends.")]
TaskId = Annotated[str, typer.Argument(metavar="TASK", help="Task id.")]
Function = Annotated[str, typer.Argument(metavar="FUNCTION", help="Registered task function.")]
Data = Annotated[str, typer.Argument(metavar="DATA", help="Input as JSON.")]


def _get(client: DaemonClient, path: str, **query: Any) -> Any:
    return client.call("GET", BASE + path, query=query or None)


def _send(client: DaemonClient, method: str, path: str, body: Any = None) -> Any:
    return client.call(method, BASE + path, {} if body is None else body)


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _options(payload: dict[str, Any], items: list[str] | None) -> None:
    for item in items or []:
        field, sep, raw = item.partition("=")
        if not sep or not field:
            raise cli.UsageError(f"--option {item!r} is not KEY=JSON, e.g. -o retries=5")
        try:
            payload[field] = json.loads(raw)
        except ValueError:
            payload[field] = raw


def _follow(client: DaemonClient, task_id: str, interval: float = 0.2) -> dict[str, Any]:
    """Show a progress bar until the task reaches a final state."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
    )
    path = f"/tasks/{urllib.parse.quote(task_id, safe='')}"
    with Progress(*columns, TimeElapsedColumn(), console=Console(), transient=False) as bar:
        line = bar.add_task(task_id, total=100)
        while True:
            task: dict[str, Any] = _get(client, path)
            progress = task.get("progress") or {}
            pct = 100.0 if task["state"] == "completed" else float(progress.get("pct", 0.0))
            message = progress.get("message") or task["state"]
            bar.update(line, completed=pct, description=f"{task_id} {message}")
            if task["state"] in _FINAL:
                return task
            time.sleep(interval)  # polling pace for a person watching, not synchronisation


def _gave_up(task: dict[str, Any]) -> None:
    """A followed task that failed or was cancelled ends the command with its reason."""
    if task["state"] in _GAVE_UP:
        reason = task.get("error") or "no reason recorded"
        cli.fail(f"task {task['id']} {task['state']}: {reason}", cli.EXIT_FAILED)


def _print_task(task: dict[str, Any], as_json: bool) -> None:
    if as_json:
        cli.print_json(task)
    else:
        typer.echo(f"task {task['id']} {task['state']}")


@app.command("add")
@cli.handle_errors
def add(
    name: Function,
    data: Data = "null",
    priority: Annotated[
        str | None, typer.Option(metavar="PRIORITY", help="0..9 or critical..background.")
    ] = None,
    queue: Annotated[str | None, typer.Option(metavar="QUEUE", help="Queue name.")] = None,
    delay: Annotated[float | None, typer.Option(metavar="SECONDS", help="Start later.")] = None,
    at: Annotated[str | None, typer.Option(metavar="TIME", help="Start at (ISO or epoch).")] = None,
    deadline_in: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Deadline from now.")
    ] = None,
    retries: Annotated[int | None, typer.Option(metavar="COUNT", help="Retries.")] = None,
    timeout: Annotated[float | None, typer.Option(metavar="SECONDS", help="Per attempt.")] = None,
    key: Annotated[str | None, typer.Option(metavar="KEY", help="Idempotency key.")] = None,
    option: Options = None,
    follow: Follow = False,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Add a task (with --follow: wait for it; a failure prints its reason, exit 1)."""
    payload: dict[str, Any] = {"name": name, "data": cli.parse_json(data, "DATA")}
    given = {
        "priority": priority,
        "queue": queue,
        "delay": delay,
        "at": float(at) if at is not None and at.replace(".", "", 1).isdigit() else at,
        "deadline_in": deadline_in,
        "retries": retries,
        "timeout": timeout,
        "idempotency_key": key,
    }
    payload.update({k: v for k, v in given.items() if v is not None})
    _options(payload, option)
    client = cli.connect(url, token, state_dir)
    task = _send(client, "POST", "/tasks", payload)
    if follow:
        task = _follow(client, task["id"])
    _print_task(task, as_json)
    if follow:
        _gave_up(task)


@app.command("ls")
@cli.handle_errors
def ls(
    state: Annotated[State | None, typer.Option(help="Only tasks in this state.")] = None,
    queue: Annotated[str | None, typer.Option(metavar="QUEUE", help="Only this queue.")] = None,
    name: Annotated[
        str | None, typer.Option(metavar="FUNCTION", help="Only this function.")
    ] = None,
    limit: Annotated[int, typer.Option(metavar="COUNT", min=1, help="At most this many.")] = 50,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """List tasks, newest first."""
    client = cli.connect(url, token, state_dir)
    chosen = None if state is None else str(state.value)
    tasks = _get(client, "/tasks", state=chosen, queue=queue, name=name, limit=limit)
    rows = [{**t, "ready_at": _time(t["ready_at"]), "error": t.get("error") or ""} for t in tasks]
    columns = [
        ("id", "ID"), ("name", "NAME"), ("state", "STATE"), ("queue", "QUEUE"),
        ("priority", "PRIO"), ("attempt", "TRY"), ("ready_at", "READY AT"), ("error", "ERROR"),
    ]  # fmt: skip
    if as_json:
        cli.print_json(tasks)
    else:
        cli.print_table(rows, columns, wide=wide, empty="no tasks")


@app.command("show")
@cli.handle_errors
def show(
    task_id: TaskId,
    follow: Follow = False,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """Show one task (with --follow: a progress bar until it ends; a failure prints its
    reason and exits 1)."""
    client = cli.connect(url, token, state_dir)
    path = f"/tasks/{urllib.parse.quote(task_id, safe='')}"
    task = _follow(client, task_id) if follow else _get(client, path)
    if as_json:
        cli.print_json(task)
    else:
        times = ("created", "ready_at", "deadline", "started", "finished")
        rows = [{"field": k, "value": _time(v) if k in times else v} for k, v in task.items()]
        cli.print_table(rows, [("field", "FIELD"), ("value", "VALUE")], wide=wide)
    if follow:
        _gave_up(task)


def _steer(action: str) -> Any:
    @cli.handle_errors
    def command(
        task_id: TaskId,
        url: cli.UrlOpt = None,
        token: cli.TokenOpt = None,
        state_dir: cli.StateDirOpt = None,
        as_json: cli.JsonOpt = False,
    ) -> None:
        client = cli.connect(url, token, state_dir)
        quoted = urllib.parse.quote(task_id, safe="")
        _print_task(_send(client, "POST", f"/tasks/{quoted}/{action}"), as_json)

    command.__doc__ = f"{action.capitalize()} a task."
    return command


for _action in ("cancel", "pause", "resume", "retry"):
    app.command(_action)(_steer(_action))


@app.command("stats")
@cli.handle_errors
def stats(
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """Counts by state and wait / run time percentiles."""
    report = _get(cli.connect(url, token, state_dir), "/stats")
    if as_json:
        cli.print_json(report)
        return
    typer.echo(f"node {report.get('node', '?')}")
    counts = [{"state": s, "tasks": n} for s, n in sorted(report["by_state"].items())]
    cli.print_table(counts, [("state", "STATE"), ("tasks", "TASKS")], wide=wide, empty="no tasks")
    keys = ("p50", "p90", "p95", "p99", "max")
    rows = []
    for label in ("wait_seconds", "run_seconds"):
        row = report.get(label) or {}
        rows.append({"seconds": label.split("_")[0], **{k: f"{row.get(k, 0):.4f}" for k in keys}})
    typer.echo("")
    cli.print_table(rows, [("seconds", "SECONDS"), *((k, k.upper()) for k in keys)], wide=wide)


@app.command("clear")
@cli.handle_errors
def clear(
    states: Annotated[
        str, typer.Option(metavar="STATES", help="Comma-separated final states.")
    ] = "completed",
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Forget finished tasks (completed by default)."""
    answer = _send(cli.connect(url, token, state_dir), "POST", "/clear", {"states": states})
    typer.echo(json.dumps(answer) if as_json else f"cleared {answer['cleared']} task(s)")


@app.command("functions")
@cli.handle_errors
def functions(
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Task functions registered on the daemon's node."""
    names = _get(cli.connect(url, token, state_dir), "/functions")
    if as_json:
        cli.print_json(names)
    else:
        typer.echo("\n".join(names) if names else "no task functions registered")


@app.command("schedules")
@cli.handle_errors
def schedules(
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """Recurring schedules with their next and last fire time."""
    found = _get(cli.connect(url, token, state_dir), "/schedules")
    if as_json:
        cli.print_json(found)
        return
    rows = [
        {
            "id": s["id"],
            "name": s["name"],
            "when": s["cron"] if s.get("cron") else f"every {s['every']:g}s",
            "next": "paused" if s.get("paused") else _time(s.get("next_fire")),
            "last": _time(s.get("last_fire")),
        }
        for s in found
    ]
    columns = [("id", "ID"), ("name", "FUNCTION"), ("when", "WHEN"), ("next", "NEXT FIRE"),
               ("last", "LAST FIRE")]  # fmt: skip
    cli.print_table(rows, columns, wide=wide, empty="no schedules")


@app.command("schedule")
@cli.handle_errors
def schedule(
    name: Function,
    data: Data = "null",
    cron: Annotated[
        str | None, typer.Option(metavar="EXPR", help="Cron expression, e.g. '0 * * * *'.")
    ] = None,
    every: Annotated[
        float | None, typer.Option(metavar="SECONDS", min=0.001, help="Interval.")
    ] = None,
    tz: Annotated[str, typer.Option(metavar="ZONE", help="Time zone of the cron.")] = "UTC",
    misfire: Annotated[
        str, typer.Option(metavar="POLICY", help="Missed fire times: skip, once or all.")
    ] = "once",
    schedule_id: Annotated[
        str | None, typer.Option("--id", metavar="ID", help="Schedule id (re-define keeps it).")
    ] = None,
    option: Options = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Run a task function by cron or every N seconds."""
    if (cron is None) == (every is None):
        raise cli.UsageError("give exactly one of --cron EXPR or --every SECONDS")
    payload: dict[str, Any] = {
        "name": name,
        "data": cli.parse_json(data, "DATA"),
        "tz": tz,
        "misfire": misfire,
    }
    payload.update({k: v for k, v in (("cron", cron), ("every", every)) if v is not None})
    if schedule_id is not None:
        payload["id"] = schedule_id
    _options(payload, option)
    created = _send(cli.connect(url, token, state_dir), "POST", "/schedules", payload)
    if as_json:
        cli.print_json(created)
    else:
        typer.echo(f"schedule {created['id']}: next fire {_time(created.get('next_fire'))}")


@app.command("unschedule")
@cli.handle_errors
def unschedule(
    schedule_id: Annotated[str, typer.Argument(metavar="ID", help="Schedule id.")],
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Remove a schedule (tasks it already created are kept)."""
    client = cli.connect(url, token, state_dir)
    quoted = urllib.parse.quote(schedule_id, safe="")
    removed = client.call("DELETE", f"{BASE}/schedules/{quoted}")
    if as_json:
        cli.print_json({"id": schedule_id, "removed": bool(removed)})
    else:
        typer.echo(f"schedule {schedule_id} removed")


if __name__ == "__main__":  # pragma: no cover
    app()
