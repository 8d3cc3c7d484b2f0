"""``orrery status``: what the running daemon is doing."""

from __future__ import annotations

from typing import Any

import typer

from ._client import ClientStateDirOpt, JsonOpt, TokenOpt, UrlOpt, WideOpt, connect
from ._output import print_json, print_table

__all__ = ["status_command"]


def _uptime(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def status_command(
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Node id, uptime, bus backend, plugins by state and sandbox layers of the daemon."""
    status: dict[str, Any] = connect(state_dir, url, token).call("GET", "/v1/status")
    if as_json:
        print_json(status)
        return
    rows: list[list[str]] = [
        ["node", status["node_id"]],
        ["url", status["url"]],
        ["version", status["version"]],
        ["uptime", _uptime(status["uptime_s"])],
        ["bus", status["bus_backend"]],
        ["storage", status["storage_backend"]],
        ["streams", str(status["streams"])],
    ]
    rows += [[state, ", ".join(names)] for state, names in sorted(status["plugins"].items())]
    print_table(("what", "value"), rows, wide=wide, shrink=("value",), keep_tail=())
    layers = status["sandbox"]
    if layers == "unknown":
        typer.echo("sandbox layers: unknown")
    else:
        typer.echo("")
        print_table(
            ("layer", "available", "mechanism", "detail"),
            [
                [
                    layer["name"],
                    "yes" if layer["available"] else "no",
                    layer["mechanism"],
                    layer["detail"],
                ]
                for layer in layers
            ],
            wide=wide,
            title="sandbox layers",
            shrink=("detail", "mechanism"),
            keep_tail=(),
        )
    unhealthy = {n: h for n, h in status["health"].items() if not h.get("ok", True)}
    for name, answer in sorted(unhealthy.items()):
        typer.echo(f"unhealthy {name}: {answer.get('error', answer)}")
