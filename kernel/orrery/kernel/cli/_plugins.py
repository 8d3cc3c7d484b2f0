"""``orrery plugins ...``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from .._config import load_config
from ..plugins import PluginInfo, PluginManager
from ._options import ConfigOpt, EntryPointsOpt, PluginsDirOpt

__all__ = ["plugins_app"]

plugins_app = typer.Typer(help="Inspect and manage plugins.", no_args_is_help=True)

_STATE_STYLE = {"active": "green", "resolved": "cyan", "failed": "bold red", "stopped": "yellow"}


def survey(plugins_dirs: list[Path], config: Path | None, entry_points: bool) -> list[PluginInfo]:
    """Discover and resolve plugins locally, starting none of them."""
    loaded = load_config(config)
    manager = PluginManager(
        node_id="local",
        config=loaded,
        plugins_dirs=[*map(Path, loaded.kernel.plugins_dirs), *plugins_dirs],
        entry_points=entry_points and loaded.kernel.entry_points,
    )
    manager.prepare()
    return sorted(manager.infos.values(), key=lambda i: i.name)


@plugins_app.command("ls", help="List plugins: name, version, state, source, error.")
def list_plugins(
    plugins_dir: PluginsDirOpt = None,
    config: ConfigOpt = None,
    entry_points: EntryPointsOpt = True,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    infos = survey(plugins_dir or [], config, entry_points)
    if as_json:
        typer.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    table = Table(title=f"{len(infos)} plugin{'s' if len(infos) != 1 else ''}")
    for column in ("name", "version", "state", "source", "error"):
        table.add_column(column, overflow="fold")
    for info in infos:
        style = _STATE_STYLE.get(str(info.state), "")
        table.add_row(
            info.name, info.version, f"[{style}]{info.state}[/]" if style else str(info.state),
            info.source, info.error or "",
        )
    Console().print(table)
