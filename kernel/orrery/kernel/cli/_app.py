"""The typer application and its entry point."""

from __future__ import annotations

import sys

import typer
from orrery.sdk import OrreryError
from rich.console import Console
from rich.markup import escape

from ._daemon import daemon_command, token_command
from ._events import publish_command, tail_command
from ._extensions import mount_extensions
from ._plugins import plugins_app
from ._run import run_command
from ._scaffold import plugin_app
from ._status import status_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="orrery",
    help="Orrery: a plugin microkernel for multi-agent systems.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help and one-line usage errors, for plugin sub-commands too (no rich boxes).
    rich_markup_mode=None,
)
app.command("run", help="Run the kernel in the foreground until Ctrl-C.")(run_command)
app.command("daemon", help="Run the kernel behind the HTTP API until SIGTERM or Ctrl-C.")(
    daemon_command
)
app.command("token", help="Print the daemon's API token.")(token_command)
app.command("status", help="Show what the running daemon is doing.")(status_command)
app.command("publish", help="Publish an event through the running daemon.")(publish_command)
app.command("tail", help="Print events as they are published, until Ctrl-C.")(tail_command)
app.add_typer(plugins_app, name="plugins")
app.add_typer(plugin_app, name="plugin")

BUILT_IN = frozenset({"run", "daemon", "token", "status", "publish", "tail", "plugins", "plugin"})


def main() -> None:
    """Console-script entry point: Orrery errors become one clear line, not a traceback."""
    # Plugins' sub-commands are loaded only when one may be wanted (an unknown command,
    # or the command list): a built-in command never pays for, or hears from, them.
    args = sys.argv[1:]
    if not args or args[0] not in BUILT_IN:
        mount_extensions(app, taken=set(BUILT_IN))
    try:
        app()
    except OrreryError as e:
        # escape(): messages quote config sections such as [plugins.x], not rich markup.
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]error:[/] {escape(str(e))}", highlight=False
        )
        sys.exit(2)
