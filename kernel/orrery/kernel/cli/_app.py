"""The typer application and its entry point."""

from __future__ import annotations

import sys

import typer
from orrery.sdk import OrreryError
from orrery.sdk.cli import exit_code

from ._daemon import daemon_command, token_command
from ._events import publish_command, request_command, tail_command
from ._extensions import mount_extensions
from ._logs import logs_command
from ._output import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    ClickException,
    UsageError,
    print_error,
)
from ._plugins import plugins_app
from ._run import run_command
from ._scaffold import plugin_app
from ._status import status_command

__all__ = ["app", "main", "run"]

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
app.command("request", help="Send a request through the running daemon; print the reply.")(
    request_command
)
app.command("tail", help="Print events as they are published, until Ctrl-C.")(tail_command)
app.command("logs", help="Print plugins' log records from the running daemon.")(logs_command)
app.add_typer(plugins_app, name="plugins")
app.add_typer(plugin_app, name="plugin")

BUILT_IN = frozenset(
    {"run", "daemon", "token", "status", "publish", "request", "tail", "logs", "plugins", "plugin"}
)


def run(args: list[str]) -> int:
    """Run the command line on ``args``; the exit code (see `_output`): every error is
    one line on stderr, never a traceback or a box."""
    # Plugins' sub-commands are loaded only when one may be wanted (an unknown command,
    # or the command list): a built-in command never pays for, or hears from, them.
    if not args or args[0] not in BUILT_IN:
        mount_extensions(app, taken=set(BUILT_IN))
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="orrery", standalone_mode=False)
    except UsageError as e:
        ctx = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())  # 'orrery' or 'orrery plugins' alone: the help
            return EXIT_USAGE
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        print_error(_message(e) + hint)
        return EXIT_USAGE
    except ClickException as e:
        print_error(_message(e))
        return EXIT_USAGE
    except typer.Abort:
        print_error("aborted")
        return EXIT_FAILED
    except OrreryError as e:
        print_error(str(e))
        return exit_code(e)
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else EXIT_OK


def _message(error: Exception) -> str:
    format_message = getattr(error, "format_message", None)
    return str(format_message()) if callable(format_message) else str(error)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))
