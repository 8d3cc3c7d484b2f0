"""What every ``orrery tasks`` command shares: the app, options, exit codes, output.

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

from orrery_scheduler._client import SchedulerClient, resolve
from orrery_scheduler._model import STATES
from orrery_scheduler.errors import ClientError, DaemonUnreachable

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Json",
    "Options",
    "State",
    "StateDir",
    "Token",
    "Url",
    "Wide",
    "app",
    "call",
    "client_for",
    "fail",
    "finish",
    "follow_task",
    "options_into",
    "parse_data",
    "print_json",
    "styled",
    "table",
    "when",
]

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
FINAL = ("completed", "failed", "cancelled")
STYLE = {
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


def fail(error: Exception, code: int = EXIT_FAILED) -> NoReturn:
    message = " ".join(str(error).split())  # one line, whatever the server wrote
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def client_for(url: str | None, token: str | None, state_dir: Path) -> SchedulerClient:
    try:
        return SchedulerClient(*resolve(url, token, state_dir))
    except ClientError as e:
        fail(e, EXIT_USAGE)


def call(client: SchedulerClient, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return client.request(method, path, **kwargs)
    except DaemonUnreachable as e:
        fail(e, EXIT_USAGE)
    except ClientError as e:
        fail(e)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def console(wide: bool) -> Console:
    # Wide: as wide as the content needs (no truncation); otherwise 80 columns.
    return Console(width=10_000 if wide else NARROW, soft_wrap=wide)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, wide: bool, title: str | None = None
) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="fold" if wide else "ellipsis")
    for row in rows:
        table.add_row(*row)
    console(wide).print(table)


def when(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")


def styled(state: str) -> str:
    return f"[{STYLE.get(state, 'white')}]{state}[/]"


def options_into(payload: dict[str, Any], items: list[str] | None) -> None:
    for item in items or []:
        field, sep, raw = item.partition("=")
        if not sep or not field:
            fail(ValueError(f"--option {item!r} is not KEY=JSON, e.g. -o retries=5"), EXIT_USAGE)
        try:
            payload[field] = json.loads(raw)
        except ValueError:
            payload[field] = raw


def parse_data(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        fail(ValueError(f"DATA is not valid JSON ({e}); quote it, e.g. '{{\"n\": 1}}'"), EXIT_USAGE)


def follow_task(client: SchedulerClient, task_id: str, interval: float = 0.2) -> dict[str, Any]:
    """Show a progress bar until the task reaches a final state."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=Console(), transient=False) as bar:
        line = bar.add_task(task_id, total=100)
        while True:
            task = call(client, "GET", f"/tasks/{task_id}")
            progress = task.get("progress") or {}
            pct = 100.0 if task["state"] == "completed" else float(progress.get("pct", 0.0))
            message = progress.get("message") or task["state"]
            bar.update(line, completed=pct, description=f"{task_id} {message}")
            if task["state"] in FINAL:
                return dict(task)
            time.sleep(interval)  # polling pace for a person watching, not synchronisation


def finish(task: dict[str, Any], as_json: bool) -> None:
    """Print the task; a failed or cancelled task ends the command with its reason."""
    if as_json:
        print_json(task)
    else:
        Console().print(f"task [bold]{task['id']}[/] {styled(task['state'])}")
    if task["state"] in ("failed", "cancelled"):
        reason = task.get("error") or "no reason recorded"
        fail(RuntimeError(f"task {task['id']} {task['state']}: {reason}"))
