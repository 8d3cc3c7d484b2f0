"""``orrery tasks ...``: the scheduler's command line, talking to a running daemon.

Mounted by the kernel CLI through the ``orrery.cli`` entry point ``tasks``; also
runnable on its own as ``python -m orrery_scheduler.cli``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._client import ClientError, SchedulerClient, resolve

__all__ = ["app"]

app = typer.Typer(
    name="tasks",
    help="Background tasks of the scheduler plugin on a running daemon.",
    no_args_is_help=True,
)
_console = Console()
_FINAL = ("completed", "failed", "cancelled")
_STYLE = {
    "completed": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "running": "cyan",
    "paused": "magenta",
}

Url = Annotated[str | None, typer.Option("--url", envvar="ORRERY_URL", help="Daemon URL.")]
Token = Annotated[str | None, typer.Option("--token", envvar="ORRERY_TOKEN", help="API token.")]
StateDir = Annotated[
    Path, typer.Option("--state-dir", help="State directory of the daemon (for URL, token).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _client(url: str | None, token: str | None, state_dir: Path) -> SchedulerClient:
    try:
        return SchedulerClient(*resolve(url, token, state_dir))
    except ClientError as e:
        _fail(e)


def _fail(error: Exception) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)


def _call(client: SchedulerClient, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return client.request(method, path, **kwargs)
    except ClientError as e:
        _fail(e)


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _show(task: dict[str, Any]) -> None:
    table = Table(show_header=False, title=f"task {task['id']}")
    state = task["state"]
    for key, value in task.items():
        if key in ("created", "ready_at", "deadline", "started", "finished"):
            value = _time(value)
        elif key == "state":
            value = f"[{_STYLE.get(state, 'white')}]{state}[/]"
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        table.add_row(key, str(value))
    _console.print(table)


def _follow(client: SchedulerClient, task_id: str, interval: float = 0.2) -> dict[str, Any]:
    """Show a progress bar until the task reaches a final state."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=_console, transient=False) as bar:
        line = bar.add_task(task_id, total=100)
        while True:
            task = _call(client, "GET", f"/tasks/{task_id}")
            progress = task.get("progress") or {}
            done = task["state"] in _FINAL
            pct = 100.0 if task["state"] == "completed" else float(progress.get("pct", 0.0))
            message = progress.get("message") or task["state"]
            bar.update(line, completed=pct, description=f"{task_id} {message}")
            if done:
                return dict(task)
            time.sleep(interval)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Registered task function name.")],
    data: Annotated[str, typer.Argument(help="Input data as JSON.")] = "null",
    priority: Annotated[str | None, typer.Option(help="0..9 or critical..background.")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue name.")] = None,
    delay: Annotated[float | None, typer.Option(help="Start after this many seconds.")] = None,
    at: Annotated[str | None, typer.Option(help="Start at (ISO 8601 or epoch).")] = None,
    deadline_in: Annotated[float | None, typer.Option(help="Deadline in seconds.")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries after failures.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per attempt.")] = None,
    key: Annotated[str | None, typer.Option(help="Idempotency key.")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Other option KEY=JSON.")
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show progress.")] = False,
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Add a task."""
    try:
        payload: dict[str, Any] = {"name": name, "data": json.loads(data)}
    except ValueError as e:
        _fail(ValueError(f"DATA is not valid JSON ({e}); quote it, e.g. '{{\"n\": 1}}'"))
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
    for item in option or []:
        field, _, raw = item.partition("=")
        try:
            payload[field] = json.loads(raw)
        except ValueError:
            payload[field] = raw
    if at is not None and at.replace(".", "", 1).isdigit():
        payload["at"] = float(at)
    client = _client(url, token, state_dir)
    task = _call(client, "POST", "/tasks", body=payload)
    if follow:
        task = _follow(client, task["id"])
    if as_json:
        typer.echo(json.dumps(task, indent=2))
    else:
        _console.print(f"task [bold]{task['id']}[/] {task['state']}")
    if task["state"] == "failed":
        raise typer.Exit(1)


@app.command("ls")
def ls(
    state: Annotated[str | None, typer.Option(help="Only tasks in this state.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    name: Annotated[str | None, typer.Option(help="Only this function.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """List tasks, newest first."""
    client = _client(url, token, state_dir)
    query = {"state": state, "queue": queue, "name": name, "limit": limit}
    tasks = _call(client, "GET", "/tasks", query=query)
    if as_json:
        typer.echo(json.dumps(tasks, indent=2))
        return
    table = Table("id", "name", "state", "queue", "prio", "attempt", "ready at", "error")
    for task in tasks:
        style = _STYLE.get(task["state"], "white")
        table.add_row(
            task["id"],
            task["name"],
            f"[{style}]{task['state']}[/]",
            task["queue"],
            str(task["priority"]),
            str(task["attempt"]),
            _time(task["ready_at"]),
            (task.get("error") or "")[:40],
        )
    _console.print(table)


@app.command("show")
def show(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show progress.")] = False,
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Show one task (with --follow: a progress bar until it finishes)."""
    client = _client(url, token, state_dir)
    task = _follow(client, task_id) if follow else _call(client, "GET", f"/tasks/{task_id}")
    if as_json:
        typer.echo(json.dumps(task, indent=2))
    else:
        _show(task)


def _steer(action: str) -> Any:
    def command(
        task_id: Annotated[str, typer.Argument(help="Task id.")],
        url: Url = None,
        token: Token = None,
        state_dir: StateDir = Path(".orrery"),
        as_json: Json = False,
    ) -> None:
        client = _client(url, token, state_dir)
        task = _call(client, "POST", f"/tasks/{task_id}/{action}", body={})
        if as_json:
            typer.echo(json.dumps(task, indent=2))
        else:
            _console.print(f"task [bold]{task['id']}[/] {task['state']}")

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
) -> None:
    """Counts by state and wait / run time percentiles."""
    report = _call(_client(url, token, state_dir), "GET", "/stats")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    counts = Table("state", "tasks", title=f"node {report.get('node', '?')}")
    for state, n in sorted(report["by_state"].items()):
        counts.add_row(state, str(n))
    _console.print(counts)
    times = Table("seconds", *(k for k in ("p50", "p90", "p95", "p99", "max")))
    for label in ("wait_seconds", "run_seconds"):
        row = report.get(label) or {}
        times.add_row(
            label.split("_")[0],
            *(f"{row.get(k, 0):.4f}" for k in ("p50", "p90", "p95", "p99", "max")),
        )
    _console.print(times)


@app.command("clear")
def clear(
    states: Annotated[str, typer.Option(help="Comma-separated final states.")] = "completed",
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Forget finished tasks (completed by default)."""
    answer = _call(_client(url, token, state_dir), "POST", "/clear", body={"states": states})
    typer.echo(json.dumps(answer) if as_json else f"cleared {answer['cleared']} task(s)")


if __name__ == "__main__":  # pragma: no cover
    app()
