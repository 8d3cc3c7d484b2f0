"""``orrery tasks add|ls|show|cancel|pause|resume|retry|stats|clear``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ._common import (
    Json,
    Options,
    State,
    StateDir,
    Token,
    Url,
    Wide,
    app,
    call,
    client_for,
    fail,
    finish,
    follow_task,
    options_into,
    parse_data,
    print_json,
    styled,
    table,
    when,
)

__all__: list[str] = []


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(metavar="FUNCTION", help="Registered task function.")],
    data: Annotated[str, typer.Argument(metavar="DATA", help="Input as JSON.")] = "null",
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
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show progress.")] = False,
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Add a task (with --follow: wait for it; a failure prints its reason, exit 1)."""
    payload: dict[str, Any] = {"name": name, "data": parse_data(data)}
    given = {
        "priority": priority,
        "queue": queue,
        "delay": delay,
        "at": at,
        "deadline_in": deadline_in,
        "retries": retries,
        "timeout": timeout,
        "idempotency_key": key,
    }
    payload.update({k: v for k, v in given.items() if v is not None})
    options_into(payload, option)
    if at is not None and at.replace(".", "", 1).isdigit():
        payload["at"] = float(at)
    client = client_for(url, token, state_dir)
    task = call(client, "POST", "/tasks", body=payload)
    if follow:
        task = follow_task(client, task["id"])
    finish(task, as_json)


@app.command("ls")
def ls(
    state: Annotated[State | None, typer.Option(help="Only tasks in this state.")] = None,
    queue: Annotated[str | None, typer.Option(metavar="QUEUE", help="Only this queue.")] = None,
    name: Annotated[
        str | None, typer.Option(metavar="FUNCTION", help="Only this function.")
    ] = None,
    limit: Annotated[int, typer.Option(metavar="COUNT", min=1, help="At most this many.")] = 50,
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """List tasks, newest first."""
    client = client_for(url, token, state_dir)
    chosen = None if state is None else str(state.value)
    query = {"state": chosen, "queue": queue, "name": name, "limit": limit}
    tasks = call(client, "GET", "/tasks", query=query)
    if as_json:
        print_json(tasks)
        return
    columns = ("id", "name", "state", "queue", "prio", "try", "ready at", "error")
    rows = [
        (
            t["id"],
            t["name"],
            styled(t["state"]),
            t["queue"],
            str(t["priority"]),
            str(t["attempt"]),
            when(t["ready_at"]),
            t.get("error") or "",
        )
        for t in tasks
    ]
    table(columns, rows, wide=wide)


@app.command("show")
def show(
    task_id: Annotated[str, typer.Argument(metavar="TASK", help="Task id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show progress.")] = False,
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """Show one task (with --follow: a progress bar until it ends; a failure prints
    its reason and exits 1)."""
    client = client_for(url, token, state_dir)
    task = follow_task(client, task_id) if follow else call(client, "GET", f"/tasks/{task_id}")
    if as_json:
        print_json(task)
    else:
        rows = []
        for key, value in task.items():
            if key in ("created", "ready_at", "deadline", "started", "finished"):
                value = when(value)
            elif key == "state":
                value = styled(value)
            elif isinstance(value, dict | list):
                value = json.dumps(value)
            rows.append((key, str(value)))
        table(("field", "value"), rows, wide=wide, title=f"task {task['id']}")
    if follow and task["state"] in ("failed", "cancelled"):
        reason = task.get("error") or "no reason recorded"
        fail(RuntimeError(f"task {task['id']} {task['state']}: {reason}"))


def _steer(action: str) -> Any:
    def command(
        task_id: Annotated[str, typer.Argument(metavar="TASK", help="Task id.")],
        url: Url = None,
        token: Token = None,
        state_dir: StateDir = Path(".orrery"),
        as_json: Json = False,
    ) -> None:
        client = client_for(url, token, state_dir)
        task = call(client, "POST", f"/tasks/{task_id}/{action}", body={})
        if as_json:
            print_json(task)
        else:
            Console().print(f"task [bold]{task['id']}[/] {styled(task['state'])}")

    command.__doc__ = f"{action.capitalize()} a task."
    return command


for _action in ("cancel", "pause", "resume", "retry"):
    app.command(_action)(_steer(_action))


@app.command("stats")
def stats(
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """Counts by state and wait / run time percentiles."""
    report = call(client_for(url, token, state_dir), "GET", "/stats")
    if as_json:
        print_json(report)
        return
    counts = sorted(report["by_state"].items())
    table(("state", "tasks"), [(s, str(n)) for s, n in counts], wide=wide,
           title=f"node {report.get('node', '?')}")  # fmt: skip
    keys = ("p50", "p90", "p95", "p99", "max")
    rows = []
    for label in ("wait_seconds", "run_seconds"):
        row = report.get(label) or {}
        rows.append((label.split("_")[0], *(f"{row.get(k, 0):.4f}" for k in keys)))
    table(("seconds", *keys), rows, wide=wide)


@app.command("clear")
def clear(
    states: Annotated[
        str, typer.Option(metavar="STATES", help="Comma-separated final states.")
    ] = "completed",
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Forget finished tasks (completed by default)."""
    answer = call(client_for(url, token, state_dir), "POST", "/clear", body={"states": states})
    typer.echo(json.dumps(answer) if as_json else f"cleared {answer['cleared']} task(s)")
