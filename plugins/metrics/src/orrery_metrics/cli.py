"""``orrery metrics ...``: the metrics of a running daemon, from the command line.

Registered in the entry-point group ``orrery.cli`` (the ``orrery`` command mounts it as
``orrery metrics``). It talks to the daemon through `orrery.sdk.client`, like the
built-in commands, and finds it the same way: ``--state-dir`` (``daemon.json`` and
``token``), or ``--url``/``--token`` (``ORRERY_URL``/``ORRERY_TOKEN``). Errors are
`orrery.sdk.OrreryError`, which the ``orrery`` command prints as one line (exit 2).

Only this module imports typer: the plugin itself (which may run sandboxed) does not.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from orrery.sdk.client import ApiError, DaemonClient, DaemonNotRunning, connect
from rich.console import Console
from rich.table import Table

from ._terminal import live_dashboard, render_rich

__all__ = ["BASE", "app"]

#: Where the daemon mounts the plugin's routes.
BASE = "/v1/plugins/metrics"
_TABLE_STATS = ("count", "avg", "min", "p50", "p90", "p99", "max")

app = typer.Typer(
    name="metrics",
    help="Metrics of the running daemon: list, show, export, live dashboards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

StateDirOpt = Annotated[
    Path, typer.Option("--state-dir", help="State directory of the daemon to talk to.")
]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="ORRERY_URL", help="Daemon URL (default: from the state dir)."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="ORRERY_TOKEN", help="API token (default: <state-dir>/token)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


class ExportFormat(StrEnum):
    """What ``orrery metrics export --format`` writes."""

    json = "json"
    csv = "csv"
    prometheus = "prometheus"


# Loopback requests must not detour through an HTTP proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _text(client: DaemonClient, path: str) -> str:
    """GET a text answer (CSV, Prometheus); `DaemonClient.call` only decodes JSON."""
    request = urllib.request.Request(
        client.url + path, headers={"Authorization": f"Bearer {client.token}"}
    )
    try:
        with _opener.open(request, timeout=client.timeout) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as e:
        try:
            message = str(json.loads(e.read() or b"{}").get("error") or e.reason)
        except (ValueError, AttributeError):
            message = str(e.reason)
        raise ApiError(e.code, message) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise DaemonNotRunning(
            f"cannot reach the daemon at {client.url} ({getattr(e, 'reason', e)}); start it "
            f"with 'orrery daemon' or pass --url",
            url=client.url,
        ) from e
    return body.decode("utf-8")


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "-"


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:,.6g}"


def _quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


@app.command("ls")
def ls_command(
    state_dir: StateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List every metric: name, type, number of series, help."""
    exported = connect(state_dir, url, token).call("GET", f"{BASE}/export?format=json")
    rows = [
        {
            "name": m["name"],
            "type": m["type"],
            "labels": m["labels"],
            "series": len(m["series"]),
            "help": m["help"],
        }
        for m in exported["metrics"]
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"{len(rows)} metric{'s' if len(rows) != 1 else ''}")
    for column in ("name", "type", "labels", "series", "help"):
        table.add_column(column, overflow="fold", justify="right" if column == "series" else "left")
    for row in rows:
        table.add_row(
            row["name"], row["type"], ",".join(row["labels"]), str(row["series"]), row["help"]
        )
    Console().print(table)


@app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Metric name, e.g. orrery_bus_events_total.")],
    state_dir: StateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One metric: every series with its value, or its statistics and percentiles."""
    metric = connect(state_dir, url, token).call("GET", f"{BASE}/metrics/{_quoted(name)}")
    if as_json:
        _print_json(metric)
        return
    series = metric["series"]
    table = Table(title=f"{metric['name']} ({metric['type']}) {metric['help']}".strip())
    table.add_column("labels", overflow="fold")
    if metric["type"] in ("counter", "gauge"):
        table.add_column("value", justify="right")
        for s in series:
            table.add_row(_labels(s["labels"]), _number(s["value"]))
    else:
        for stat in _TABLE_STATS:
            table.add_column(stat, justify="right")
        for s in series:
            table.add_row(_labels(s["labels"]), *(_number(s.get(stat)) for stat in _TABLE_STATS))
    Console().print(table)


@app.command("export")
def export_command(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="json, csv or prometheus.")
    ] = ExportFormat.json,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    state_dir: StateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Every metric's current values, as JSON, CSV or the Prometheus text format."""
    client = connect(state_dir, url, token)
    path = f"{BASE}/export?format={fmt.value}"
    if fmt is ExportFormat.json:
        text = json.dumps(client.call("GET", path), indent=2) + "\n"
    else:
        text = _text(client, path)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command("dash")
def dash_command(
    name: Annotated[str, typer.Argument(help="Dashboard name (GET .../dashboards lists them).")],
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval",
            "-n",
            min=0.1,
            help="Seconds between refreshes (default: the dashboard's own).",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame and exit (for scripts and tests).")
    ] = False,
    state_dir: StateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw a dashboard in the terminal and keep it live until Ctrl-C."""
    client = connect(state_dir, url, token)
    path = f"{BASE}/dashboards/{_quoted(name)}"

    def fetch() -> dict[str, Any]:
        rendered: dict[str, Any] = client.call("GET", path)
        return rendered

    if as_json:
        _print_json(fetch())
        return
    if once:
        Console().print(render_rich(fetch()))
        return
    try:
        live_dashboard(fetch, interval=interval)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a live dashboard is meant to end
