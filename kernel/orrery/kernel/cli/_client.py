"""Talking to a running daemon: where it is, its token, JSON requests and the SSE stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The connection options are the SDK's, so kernel and plugin commands read alike.
from orrery.sdk.cli import JsonOpt, TokenOpt, UrlOpt, WideOpt
from orrery.sdk.cli import StateDirOpt as ClientStateDirOpt
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
