"""``orrery tasks functions|schedules|schedule|unschedule``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    EXIT_USAGE,
    Json,
    Options,
    StateDir,
    Token,
    Url,
    Wide,
    app,
    call,
    client_for,
    fail,
    options_into,
    parse_data,
    print_json,
    table,
    when,
)

__all__: list[str] = []


@app.command("functions")
def functions(
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Task functions registered on the daemon's node."""
    names = call(client_for(url, token, state_dir), "GET", "/functions")
    if as_json:
        print_json(names)
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
    found = call(client_for(url, token, state_dir), "GET", "/schedules")
    if as_json:
        print_json(found)
        return
    rows = [
        (
            s["id"],
            s["name"],
            s["cron"] if s.get("cron") else f"every {s['every']:g}s",
            "paused" if s.get("paused") else when(s.get("next_fire")),
            when(s.get("last_fire")),
        )
        for s in found
    ]
    table(("id", "function", "when", "next fire", "last fire"), rows, wide=wide)


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
        fail(ValueError("give exactly one of --cron EXPR or --every SECONDS"), EXIT_USAGE)
    payload: dict[str, Any] = {"name": name, "data": parse_data(data), "tz": tz, "misfire": misfire}
    payload.update({k: v for k, v in (("cron", cron), ("every", every)) if v is not None})
    if schedule_id is not None:
        payload["id"] = schedule_id
    options_into(payload, option)
    created = call(client_for(url, token, state_dir), "POST", "/schedules", body=payload)
    if as_json:
        print_json(created)
    else:
        typer.echo(f"schedule {created['id']}: next fire {when(created.get('next_fire'))}")


@app.command("unschedule")
def unschedule(
    schedule_id: Annotated[str, typer.Argument(metavar="ID", help="Schedule id.")],
    url: Url = None,
    token: Token = None,
    state_dir: StateDir = Path(".orrery"),
    as_json: Json = False,
) -> None:
    """Remove a schedule (tasks it already created are kept)."""
    removed = call(client_for(url, token, state_dir), "DELETE", f"/schedules/{schedule_id}")
    if as_json:
        print_json({"id": schedule_id, "removed": bool(removed)})
    else:
        typer.echo(f"schedule {schedule_id} removed")
