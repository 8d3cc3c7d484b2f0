"""Talking to a running daemon: where it is, its token, JSON requests and the SSE stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from orrery.sdk.client import DaemonClient, connect
from rich.console import Console
from rich.table import Table

__all__ = [
    "ClientStateDirOpt",
    "DaemonClient",
    "JsonOpt",
    "TokenOpt",
    "UrlOpt",
    "connect",
    "plugin_table",
    "print_json",
]

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="ORRERY_URL", help="Daemon URL (default: from the state dir)."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="ORRERY_TOKEN", help="API token (default: <state-dir>/token)."),
]
ClientStateDirOpt = Annotated[
    Path,
    typer.Option("--state-dir", help="State directory of the daemon to talk to."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

_STATE_STYLE = {"active": "green", "resolved": "cyan", "failed": "bold red", "stopped": "yellow"}


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def styled_state(state: str) -> str:
    style = _STATE_STYLE.get(state, "")
    return f"[{style}]{state}[/]" if style else state


def plugin_table(plugins: list[dict[str, Any]], title: str | None = None) -> None:
    """The plugin table every command prints: name, version, state, source, error."""
    n = len(plugins)
    table = Table(title=title or f"{n} plugin{'s' if n != 1 else ''}")
    for column in ("name", "version", "state", "source", "error"):
        table.add_column(column, overflow="fold")
    for p in plugins:
        table.add_row(
            p["name"], p["version"], styled_state(str(p["state"])), p["source"], p["error"] or ""
        )
    Console().print(table)
