"""Talking to a running daemon: where it is, its token, JSON requests and the SSE stream."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from orrery.sdk.client import DEFAULT_STATE_DIR, DaemonClient, find_state_dir
from orrery.sdk.client import connect as connect_state_dir

from ._output import print_json, print_table

__all__ = [
    "ClientStateDirOpt",
    "DaemonClient",
    "JsonOpt",
    "TokenOpt",
    "UrlOpt",
    "WideOpt",
    "connect",
    "plugin_table",
    "print_json",
]

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ORRERY_URL",
        metavar="URL",
        help="Daemon URL (default: from the state dir).",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ORRERY_TOKEN",
        metavar="TOKEN",
        help="API token (default: <state-dir>/token).",
    ),
]
ClientStateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="ORRERY_STATE_DIR",
        metavar="DIR",
        help="State directory of the daemon (default: .orrery here or in a parent "
        "directory, else the daemon started last).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
WideOpt = Annotated[
    bool, typer.Option("--wide", help="Print every column in full (tables fit 80 columns).")
]


def connect(state_dir: Path | None, url: str | None, token: str | None) -> DaemonClient:
    """A client of the daemon named by the options; without --state-dir, the one found
    from the current directory (as plugins' commands do, see `orrery.sdk.cli`)."""
    folder = state_dir if state_dir is not None else find_state_dir() or Path(DEFAULT_STATE_DIR)
    return connect_state_dir(folder, url, token)


#: Columns of the plugin table; ``--wide`` adds the rest.
PLUGIN_COLUMNS = ("name", "version", "state", "source", "error")
WIDE_PLUGIN_COLUMNS = (*PLUGIN_COLUMNS, "description", "author")


def plugin_table(
    plugins: list[dict[str, Any]], title: str | None = None, *, wide: bool = False
) -> None:
    """The plugin table every command prints: name, version, state, source, error."""
    n = len(plugins)
    columns = WIDE_PLUGIN_COLUMNS if wide else PLUGIN_COLUMNS
    print_table(
        columns,
        [[p.get(c) or "" for c in columns] for p in plugins],
        wide=wide,
        title=title or f"{n} plugin{'s' if n != 1 else ''}",
        shrink=("source", "error", "name", "version"),
    )
