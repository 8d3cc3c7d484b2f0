"""The typer application and its entry point."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from orrery.sdk import OrreryError

from ._plugins import plugins_app
from ._run import run_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="orrery",
    help="Orrery: a plugin microkernel for multi-agent systems.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("run", help="Run the kernel in the foreground until Ctrl-C.")(run_command)
app.add_typer(plugins_app, name="plugins")


def main() -> None:
    """Console-script entry point: Orrery errors become one clear line, not a traceback."""
    try:
        app()
    except OrreryError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)
