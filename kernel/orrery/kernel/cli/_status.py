"""``orrery status``: what the running daemon is doing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ._client import ClientStateDirOpt, JsonOpt, TokenOpt, UrlOpt, connect, print_json, styled_state

__all__ = ["status_command"]


def _uptime(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def status_command(
    state_dir: ClientStateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Node id, uptime, bus backend, plugins by state and sandbox layers of the daemon."""
    status: dict[str, Any] = connect(state_dir, url, token).call("GET", "/v1/status")
    if as_json:
        print_json(status)
        return
    console = Console()
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("node", status["node_id"])
    summary.add_row("url", status["url"])
    summary.add_row("version", status["version"])
    summary.add_row("uptime", _uptime(status["uptime_s"]))
    summary.add_row("bus", status["bus_backend"])
    summary.add_row("storage", status["storage_backend"])
    summary.add_row("streams", str(status["streams"]))
    for state, names in sorted(status["plugins"].items()):
        summary.add_row(styled_state(state), ", ".join(names))
    console.print(summary)
    layers = status["sandbox"]
    if layers == "unknown":
        console.print("sandbox layers: unknown")
    else:
        table = Table(title="sandbox layers")
        for column in ("layer", "available", "mechanism", "detail"):
            table.add_column(column, overflow="fold")
        for layer in layers:
            ok = "[green]yes[/]" if layer["available"] else "[yellow]no[/]"
            table.add_row(layer["name"], ok, layer["mechanism"], layer["detail"])
        console.print(table)
    unhealthy = {n: h for n, h in status["health"].items() if not h.get("ok", True)}
    for name, answer in sorted(unhealthy.items()):
        console.print(f"[bold red]unhealthy[/] {name}: {answer.get('error', answer)}")
