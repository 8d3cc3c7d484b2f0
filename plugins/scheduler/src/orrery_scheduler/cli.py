"""``orrery tasks ...``: the scheduler's command line, talking to a running daemon.

Mounted by the kernel CLI through the ``orrery.cli`` entry point ``tasks``; also
runnable on its own as ``python -m orrery_scheduler.cli``. The only module of the
plugin that imports typer and rich.

Conventions shared by every plugin CLI: exit 0 when the operation succeeded, 1 when
it failed (an unknown task, a failed task under ``--follow``), 2 for a usage or
connection problem; errors are one line on stderr; tables fit 80 columns unless
``--wide``; ``--json`` prints the API's answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._client import SchedulerClient, resolve
from ._model import STATES
from .errors import ClientError, DaemonUnreachable

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "app"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: Width a table keeps to unless ``--wide``.
NARROW = 80

app = typer.Typer(
    name="tasks",
    help="Background tasks of the scheduler plugin on a running daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain usage errors: one line, no boxes
)
_FINAL = ("completed", "failed", "cancelled")
_STYLE = {
    "completed": "green",
    "failed": "bold red",
    "cancelled": "yellow",
    "running": "cyan",
    "paused": "magenta",
}

# "--state" accepts the displayed states only: a typo is a usage error, not "no tasks".
State = StrEnum("State", {s: s for s in STATES})  # type: ignore[misc]

Url = Annotated[
    str | None, typer.Option("--url", envvar="ORRERY_URL", metavar="URL", help="Daemon URL.")
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="ORRERY_TOKEN", metavar="TOKEN", help="API token."),
]
StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="ORRERY_STATE_DIR",
        metavar="DIR",
        help="State directory of the daemon (for its URL and token).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Wide = Annotated[bool, typer.Option("--wide", help="Show every column in full.")]
Options = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", metavar="KEY=JSON", help="Another task option."),
]


def _fail(error: Exception, code: int = EXIT_FAILED) -> NoReturn:
    message = " ".join(str(error).split())  # one line, whatever the server wrote
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _client(url: str | None, token: str | None, state_dir: Path) -> SchedulerClient:
    try:
        return SchedulerClient(*resolve(url, token, state_dir))
    except ClientError as e:
        _fail(e, EXIT_USAGE)


def _call(client: SchedulerClient, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return client.request(method, path, **kwargs)
    except DaemonUnreachable as e:
        _fail(e, EXIT_USAGE)
    except ClientError as e:
        _fail(e)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _console(wide: bool) -> Console:
    # Wide: as wide as the content needs (no truncation); otherwise 80 columns.
    return Console(width=10_000 if wide else NARROW, soft_wrap=wide)


def _table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, wide: bool, title: str | None = None
) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="fold" if wide else "ellipsis")
    for row in rows:
        table.add_row(*row)
    _console(wide).print(table)


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _styled(state: str) -> str:
    return f"[{_STYLE.get(state, 'white')}]{state}[/]"


def _options(payload: dict[str, Any], items: list[str] | None) -> None:
    for item in items or []:
        field, sep, raw = item.partition("=")
        if not sep or not field:
            _fail(ValueError(f"--option {item!r} is not KEY=JSON, e.g. -o retries=5"), EXIT_USAGE)
        try:
            payload[field] = json.loads(raw)
        except ValueError:
            payload[field] = raw


def _data(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        _fail(
            ValueError(f"DATA is not valid JSON ({e}); quote it, e.g. '{{\"n\": 1}}'"), EXIT_USAGE
        )


def _follow(client: SchedulerClient, task_id: str, interval: float = 0.2) -> dict[str, Any]:
    """Show a progress bar until the task reaches a final state."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=Console(), transient=False) as bar:
        line = bar.add_task(task_id, total=100)
        while True:
            task = _call(client, "GET", f"/tasks/{task_id}")
            progress = task.get("progress") or {}
            pct = 100.0 if task["state"] == "completed" else float(progress.get("pct", 0.0))
            message = progress.get("message") or task["state"]
            bar.update(line, completed=pct, description=f"{task_id} {message}")
            if task["state"] in _FINAL:
                return dict(task)
            time.sleep(interval)  # polling pace for a person watching, not synchronisation


def _finish(task: dict[str, Any], as_json: bool) -> None:
    """Print the task; a failed or cancelled task ends the command with its reason."""
    if as_json:
        _print_json(task)
    else:
        Console().print(f"task [bold]{task['id']}[/] {_styled(task['state'])}")
    if task["state"] in ("failed", "cancelled"):
        reason = task.get("error") or "no reason recorded"
        _fail(RuntimeError(f"task {task['id']} {task['state']}: {reason}"))


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
    payload: dict[str, Any] = {"name": name, "data": _data(data)}
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
    _options(payload, option)
    if at is not None and at.replace(".", "", 1).isdigit():
        payload["at"] = float(at)
    client = _client(url, token, state_dir)
    task = _call(client, "POST", "/tasks", body=payload)
    if follow:
        task = _follow(client, task["id"])
    _finish(task, as_json)


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
    client = _client(url, token, state_dir)
    chosen = None if state is None else str(state.value)
    query = {"state": chosen, "queue": queue, "name": name, "limit": limit}
    tasks = _call(client, "GET", "/tasks", query=query)
    if as_json:
        _print_json(tasks)
        return
    columns = ("id", "name", "state", "queue", "prio", "try", "ready at", "error")
    rows = [
        (
            t["id"],
            t["name"],
            _styled(t["state"]),
            t["queue"],
            str(t["priority"]),
            str(t["attempt"]),
            _time(t["ready_at"]),
            t.get("error") or "",
        )
        for t in tasks
    ]
    _table(columns, rows, wide=wide)


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
    client = _client(url, token, state_dir)
    task = _follow(client, task_id) if follow else _call(client, "GET", f"/tasks/{task_id}")
    if as_json:
        _print_json(task)
    else:
        rows = []
        for key, value in task.items():
            if key in ("created", "ready_at", "deadline", "started", "finished"):
                value = _time(value)
            elif key == "state":
                value = _styled(value)
            elif isinstance(value, dict | list):
                value = json.dumps(value)
            rows.append((key, str(value)))
        _table(("field", "value"), rows, wide=wide, title=f"task {task['id']}")
    if follow and task["state"] in ("failed", "cancelled"):
        reason = task.get("error") or "no reason recorded"
        _fail(RuntimeError(f"task {task['id']} {task['state']}: {reason}"))


def _steer(action: str) -> Any:
    def command(
        task_id: Annotated[str, typer.Argument(metavar="TASK", help="Task id.")],
        url: Url = None,
        token: Token = None,
        state_dir: StateDir = Path(".orrery"),
        as_json: Json = False,
    ) -> None:
        client = _client(url, token, state_dir)
        task = _call(client, "POST", f"/tasks/{task_id}/{action}", body={})
        if as_json:
            _print_json(task)
        else:
            Console().print(f"task [bold]{task['id']}[/] {_styled(task['state'])}")

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
    report = _call(_client(url, token, state_dir), "GET", "/stats")
    if as_json:
        _print_json(report)
        return
    counts = sorted(report["by_state"].items())
    _table(("state", "tasks"), [(s, str(n)) for s, n in counts], wide=wide,
           title=f"node {report.get('node', '?')}")  # fmt: skip
    keys = ("p50", "p90", "p95", "p99", "max")
    rows = []
    for label in ("wait_seconds", "run_seconds"):
        row = report.get(label) or {}
        rows.append((label.split("_")[0], *(f"{row.get(k, 0):.4f}" for k in keys)))
    _table(("seconds", *keys), rows, wide=wide)


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
    answer = _call(_client(url, token, state_dir), "POST", "/clear", body={"states": states})
    typer.echo(json.dumps(answer) if as_json else f"cleared {answer['cleared']} task(s)")


@app.command("functions")
def functions(
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Task functions registered on the daemon's node."""
    names = _call(_client(url, token, state_dir), "GET", "/functions")
    if as_json:
        _print_json(names)
    else:
        typer.echo("\n".join(names) if names else "no task functions registered")


@app.command("schedules")
def schedules(
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """Recurring schedules with their next fire time."""
    found = _call(_client(url, token, state_dir), "GET", "/schedules")
    if as_json:
        _print_json(found)
        return
    rows = [
        (
            s["id"],
            s["name"],
            s["cron"] if s.get("cron") else f"every {s['every']:g}s",
            "paused" if s.get("paused") else _time(s.get("next_fire")),
            _time(s.get("last_fire")),
        )
        for s in found
    ]
    _table(("id", "function", "when", "next fire", "last fire"), rows, wide=wide)


@app.command("schedule")
def schedule(
    name: Annotated[str, typer.Argument(metavar="FUNCTION", help="Registered task function.")],
    data: Annotated[str, typer.Argument(metavar="DATA", help="Input as JSON.")] = "null",
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
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Run a task function by cron or every N seconds."""
    if (cron is None) == (every is None):
        _fail(ValueError("give exactly one of --cron EXPR or --every SECONDS"), EXIT_USAGE)
    payload: dict[str, Any] = {"name": name, "data": _data(data), "tz": tz, "misfire": misfire}
    payload.update({k: v for k, v in (("cron", cron), ("every", every)) if v is not None})
    if schedule_id is not None:
        payload["id"] = schedule_id
    _options(payload, option)
    created = _call(_client(url, token, state_dir), "POST", "/schedules", body=payload)
    if as_json:
        _print_json(created)
    else:
        typer.echo(f"schedule {created['id']}: next fire {_time(created.get('next_fire'))}")


@app.command("unschedule")
def unschedule(
    schedule_id: Annotated[str, typer.Argument(metavar="ID", help="Schedule id.")],
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Remove a schedule (tasks it already created are kept)."""
    removed = _call(_client(url, token, state_dir), "DELETE", f"/schedules/{schedule_id}")
    if as_json:
        _print_json({"id": schedule_id, "removed": bool(removed)})
    else:
        typer.echo(f"schedule {schedule_id} removed")


if __name__ == "__main__":  # pragma: no cover
    app()
