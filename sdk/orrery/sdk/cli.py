"""What every plugin's command line shares: options, finding the daemon, exit codes,
one-line errors and output that fits the terminal.

The only SDK module that imports typer; `orrery.sdk` never imports it, so a plugin
(which may run sandboxed) does not pay for it. A plugin's ``cli.py``::

    from orrery.sdk import cli

    app = cli.plugin_app("greeter", help="Greetings on a running daemon.")

    @app.command("ls")
    @cli.handle_errors
    def ls(
        limit: int = 20,
        url: cli.UrlOpt = None,
        token: cli.TokenOpt = None,
        state_dir: cli.StateDirOpt = None,
        as_json: cli.JsonOpt = False,
        wide: cli.WideOpt = False,
    ) -> None:
        client = cli.connect(url, token, state_dir)
        rows = client.call("GET", "/v1/plugins/greeter/greetings", query={"limit": limit})
        cli.output(rows, as_json=as_json, columns=["id", "who", "text"], wide=wide)

Exit codes: `EXIT_OK` (0), `EXIT_FAILED` (1: the daemon refused or the operation
failed), `EXIT_USAGE` (2: a bad argument, or no daemon to talk to).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from .client import DaemonClient, context_path, find_state_dir
from .client import connect as connect_state_dir
from .errors import ApiError, ConfigError, DaemonNotRunning, OrreryError, UsageError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "JsonOpt",
    "StateDirOpt",
    "TokenOpt",
    "UrlOpt",
    "UsageError",
    "WideOpt",
    "connect",
    "exit_code",
    "fail",
    "format_table",
    "handle_errors",
    "output",
    "parse_json",
    "plugin_app",
    "print_json",
    "print_table",
    "resolve_state_dir",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: Terminal width tables are cut to unless ``--wide``.
TABLE_WIDTH = 80
# Statuses that mean the command line asked for something malformed, or is not allowed
# to ask at all (bad token): the user must change the command, not retry it.
_USAGE_STATUSES = frozenset({400, 401, 422})

P = ParamSpec("P")
R = TypeVar("R")

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ORRERY_URL",
        metavar="URL",
        help="Daemon URL (default: found from the state directory).",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ORRERY_TOKEN",
        metavar="TOKEN",
        help="API token (default: the state directory's token file).",
    ),
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="ORRERY_STATE_DIR",
        metavar="DIR",
        help="State directory of the daemon (default: .orrery here or in a parent "
        "directory, else the daemon started last).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WideOpt = Annotated[
    bool, typer.Option("--wide", help="Show whole cells instead of fitting 80 columns.")
]


def plugin_app(name: str, *, help: str) -> typer.Typer:
    """A typer app for ``orrery <name> ...``: help without rich markup or boxes, a
    plain one-line error on failure, help when run without a command."""
    return typer.Typer(
        name=name,
        help=help,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=False,
    )


# -- finding the daemon ------------------------------------------------------------------


def resolve_state_dir(state_dir: Path | None) -> Path | None:
    """``state_dir`` if given, else the daemon found from here (see `find_state_dir`)."""
    return state_dir if state_dir is not None else find_state_dir()


def connect(
    url: str | None = None,
    token: str | None = None,
    state_dir: Path | None = None,
    *,
    timeout: float = 30.0,
) -> DaemonClient:
    """A client of the daemon named by the options, or found from any directory.

    Raises `UsageError` (exit 2) saying what to pass when there is no daemon to find
    or no token for it.
    """
    if url is not None and token is not None:
        return DaemonClient(url.rstrip("/"), token, timeout)
    folder = resolve_state_dir(state_dir)
    if folder is None:
        if url is None:
            raise UsageError(
                f"no running daemon found: no .orrery/daemon.json in this directory or a "
                f"parent, and none recorded in {context_path()}; start one with 'orrery "
                f"daemon', or pass --state-dir DIR or --url URL --token TOKEN"
            )
        raise UsageError("no API token: pass --token (or ORRERY_TOKEN), or --state-dir DIR")
    try:
        client = connect_state_dir(folder, url, token)
    except OrreryError as e:
        raise UsageError(str(e)) from e
    client.timeout = timeout
    return client


# -- errors and exit codes ---------------------------------------------------------------


def exit_code(error: BaseException) -> int:
    """The exit status for ``error``: 2 for usage, configuration and connection errors
    (the command, or what it points at, must change before it can work), else 1."""
    if isinstance(error, UsageError | ConfigError | DaemonNotRunning | ConnectionError):
        return EXIT_USAGE
    if isinstance(error, ApiError):
        return EXIT_USAGE if error.status in _USAGE_STATUSES else EXIT_FAILED
    return EXIT_FAILED


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: <message>`` on one line of stderr and exit with ``code``."""
    one_line = " ".join(str(message).split())
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(code)


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so an `OrreryError` becomes one line on stderr and exit 1 or 2
    (see `exit_code`) instead of a traceback. Put it under ``@app.command()``."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except OrreryError as e:
            fail(str(e), exit_code(e))

    return run


def parse_json(text: str, what: str) -> Any:
    """Parse a JSON command-line argument; `UsageError` naming ``what`` when malformed."""
    try:
        return json.loads(text)
    except ValueError as e:
        raise UsageError(
            f"{what} is not valid JSON ({e}); quote it for the shell, e.g. '{{\"n\": 1}}'"
        ) from e


# -- output ------------------------------------------------------------------------------


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    text = str(value)
    return " ".join(text.split()) if "\n" in text or "\t" in text else text


def _fit(widths: list[int], floors: list[int], width: int) -> list[int]:
    # Narrow the widest shrinkable column one character at a time: long free-text
    # columns (sources, errors) give way first, short ones (state, id) stay whole.
    widths = list(widths)
    while sum(widths) + 2 * (len(widths) - 1) > width:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def format_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str | tuple[str, str]],
    *,
    wide: bool = False,
    width: int = TABLE_WIDTH,
) -> str:
    """Rows as an aligned text table. ``columns`` are keys, or ``(key, header)`` pairs.

    Unless ``wide``, lines fit ``width`` characters: the widest columns are cut, and a
    cut cell ends with ``…``.
    """
    keys = [c if isinstance(c, str) else c[0] for c in columns]
    headers = [c.upper() if isinstance(c, str) else c[1] for c in columns]
    cells = [[_cell(row.get(key)) for key in keys] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    if not wide:
        floors = [min(w, max(len(h), 6)) for w, h in zip(widths, headers, strict=True)]
        widths = _fit(widths, floors, width)

    def line(values: Sequence[str]) -> str:
        out = []
        for value, w in zip(values, widths, strict=True):
            out.append(value.ljust(w) if len(value) <= w else value[: max(w - 1, 0)] + "…")
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cells)])


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str | tuple[str, str]],
    *,
    wide: bool = False,
    empty: str = "nothing to show",
) -> None:
    """Print `format_table` on stdout (``empty`` on stderr when there are no rows)."""
    if not rows:
        typer.echo(empty, err=True)
        return
    typer.echo(format_table(rows, columns, wide=wide))


def output(
    data: Any,
    *,
    as_json: bool,
    columns: Sequence[str | tuple[str, str]],
    wide: bool = False,
    empty: str = "nothing to show",
) -> None:
    """``--json``: print ``data`` as JSON; otherwise a table of it (a list of objects,
    or one object shown as a one-row table)."""
    if as_json:
        print_json(data)
        return
    rows = [data] if isinstance(data, Mapping) else list(data or [])
    print_table(rows, columns, wide=wide, empty=empty)
