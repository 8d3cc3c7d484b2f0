"""``orrery workflows ...``: the plugin's command line, talking to a running daemon.

Mounted by ``orrery`` through the ``orrery.cli`` entry point. The only module of the
plugin that imports typer: the plugin itself stays light (it may run sandboxed).
"""

from __future__ import annotations

from typing import Annotated

import typer
from orrery.sdk import cli

__all__ = ["app"]

#: Where the daemon mounts the plugin's routes.
BASE = "/v1/plugins/workflows"

app = cli.plugin_app("workflows", help="The workflows plugin on a running daemon.")


@app.command("ping")
@cli.handle_errors
def ping(
    who: Annotated[str | None, typer.Argument(metavar="NAME", help="Who pings.")] = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Ping the plugin; prints the reply and the count."""
    client = cli.connect(url, token, state_dir)
    answer = client.call("POST", f"{BASE}/ping", {"who": who} if who else {})
    if as_json:
        cli.print_json(answer)
    else:
        typer.echo(f"{answer['reply']} (ping {answer['count']})")


@app.command("stats")
@cli.handle_errors
def stats(
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """How many pings, and when the last one came."""
    client = cli.connect(url, token, state_dir)
    answer = client.call("GET", f"{BASE}/stats")
    cli.output(answer, as_json=as_json, columns=["count", "last"], wide=wide)
