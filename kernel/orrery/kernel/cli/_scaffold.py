"""``orrery plugin new NAME``: start a pip-installable plugin project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from orrery.kernel.scaffold import create_plugin_project

__all__ = ["plugin_app"]

plugin_app = typer.Typer(help="Write plugins.", no_args_is_help=True)


@plugin_app.command(
    "new",
    help="Create ./orrery-NAME: a plugin package in the standard layout, with tests and docs.",
)
def new_plugin(
    name: Annotated[str, typer.Argument(help="Plugin name, e.g. 'weather' or 'pdf-ingest'.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the project.")] = Path(
        "."
    ),
) -> None:
    root = create_plugin_project(name, directory)
    typer.echo(f"created {root}")
    typer.echo("next:")
    typer.echo(f"  cd {root}")
    typer.echo("  pip install -e '.[test]'   # Orrery now discovers the plugin")
    typer.echo("  pytest                     # its tests run against a real kernel")
    typer.echo("  orrery plugins rescan      # a running daemon starts it")
    typer.echo(f"  orrery {name} ping         # its own command line")
