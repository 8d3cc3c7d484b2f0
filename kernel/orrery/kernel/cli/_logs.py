"""``orrery logs [PLUGIN] [--follow]``: plugin log records from the running daemon."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Annotated, Any

import typer

from ._client import ClientStateDirOpt, JsonOpt, TokenOpt, UrlOpt, connect

__all__ = ["logs_command"]

_FOLLOW_WAIT = 30  # seconds each long poll may wait on the daemon


def _line(record: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record["time"]))
    return f"{stamp} {record['level'].upper():<7} {record['plugin']}: {record['message']}"


def logs_command(
    plugin: Annotated[
        str | None, typer.Argument(metavar="PLUGIN", help="Only this plugin's records.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records until Ctrl-C.")
    ] = False,
    level: Annotated[
        str, typer.Option("--level", metavar="LEVEL", help="debug, info, warning or error.")
    ] = "debug",
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=5000, metavar="N", help="Newest N records."),
    ] = 200,
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print recent log records of plugins (ctx.log), oldest first; --follow for new ones."""
    client = connect(state_dir, url, token)
    query: dict[str, Any] = {"level": level, "limit": limit}
    if plugin:
        query["plugin"] = plugin
    after = 0
    try:
        while True:
            path = "/v1/logs?" + urllib.parse.urlencode({**query, "after": after})
            answer = client.call("GET", path)
            for record in answer["records"]:
                typer.echo(json.dumps(record) if as_json else _line(record))
            after = answer["next"]
            if not follow:
                return
            query["wait"] = _FOLLOW_WAIT
    except KeyboardInterrupt:
        pass
