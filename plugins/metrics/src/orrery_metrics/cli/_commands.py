"""``orrery metrics ...``: the metrics of a running daemon, from the command line.

Registered in the entry-point group ``orrery.cli`` (the ``orrery`` command mounts it as
``orrery metrics``). It talks to the daemon through `orrery.sdk.client`, like the
built-in commands, and finds it the same way: ``--state-dir`` (``daemon.json`` and
``token``), or ``--url``/``--token`` (``ORRERY_URL``/``ORRERY_TOKEN``).

Conventions shared by every plugin CLI: exit 0 when the operation succeeded, 1 when
the daemon refused it (an unknown metric or dashboard, a bad parameter), 2 for a usage
or connection problem; errors are one line on stderr; tables fit 80 columns unless
``--wide``; ``--json`` prints the API's answer.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from orrery.sdk import OrreryError
from orrery.sdk.client import ApiError, DaemonClient, DaemonNotRunning, connect
from rich.console import Console
from rich.table import Table

from ._terminal import live_dashboard, render_rich

__all__ = ["BASE", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "app"]

#: Where the daemon mounts the plugin's routes.
BASE = "/v1/plugins/metrics"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
NARROW = 80
_TABLE_STATS = ("count", "avg", "min", "p50", "p90", "p99", "max")

app = typer.Typer(
    name="metrics",
    help="Metrics of the running daemon: list, show, export, anomaly checks, dashboards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain usage errors: one line, no boxes
)

StateDirOpt = Annotated[
    Path,
    typer.Option(
        "--state-dir", envvar="ORRERY_STATE_DIR", metavar="DIR",
        help="State directory of the daemon to talk to.",
    ),
]  # fmt: skip
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="ORRERY_URL", metavar="URL", help="Daemon URL."),
]
TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="ORRERY_TOKEN", metavar="TOKEN", help="API token."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
WideOpt = Annotated[bool, typer.Option("--wide", help="Show every column in full.")]


class ExportFormat(StrEnum):
    """What ``orrery metrics export --format`` writes."""

    json = "json"
    csv = "csv"
    prometheus = "prometheus"


class Method(StrEnum):
    """Anomaly detectors."""

    zscore = "zscore"
    mad = "mad"
    ewma = "ewma"


def _fail(error: Exception, code: int) -> NoReturn:
    message = " ".join(str(error).split())  # one line, whatever the server wrote
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _connect(state_dir: Path, url: str | None, token: str | None) -> DaemonClient:
    try:
        return connect(state_dir, url, token)
    except OrreryError as e:
        _fail(e, EXIT_USAGE)


def _call(client: DaemonClient, path: str, method: str = "GET", body: Any = None) -> Any:
    try:
        return client.call(method, path, body)
    except ApiError as e:
        _fail(e, EXIT_USAGE if e.status == 401 else EXIT_FAILED)
    except DaemonNotRunning as e:
        _fail(e, EXIT_USAGE)


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
        _fail(ApiError(e.code, message), EXIT_USAGE if e.code == 401 else EXIT_FAILED)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        reason = getattr(e, "reason", e)
        _fail(
            DaemonNotRunning(
                f"cannot reach the daemon at {client.url} ({reason}); start it with "
                f"'orrery daemon' or pass --url"
            ),
            EXIT_USAGE,
        )
    return body.decode("utf-8")


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    wide: bool,
    title: str | None = None,
    right: Iterable[str] = (),
) -> None:
    table = Table(title=title)
    numeric = set(right)
    for column in columns:
        table.add_column(
            column, no_wrap=True, overflow="fold" if wide else "ellipsis",
            justify="right" if column in numeric else "left",
        )  # fmt: skip
    for row in rows:
        table.add_row(*row)
    Console(width=10_000 if wide else NARROW, soft_wrap=wide).print(table)


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
    wide: WideOpt = False,
) -> None:
    """List every metric: name, type, number of series, help."""
    exported = _call(_connect(state_dir, url, token), f"{BASE}/export?format=json")
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
    cells = [
        (r["name"], r["type"], ",".join(r["labels"]), str(r["series"]), r["help"]) for r in rows
    ]
    title = f"{len(rows)} metric{'s' if len(rows) != 1 else ''}"
    _table(("name", "type", "labels", "series", "help"), cells, wide=wide, title=title,
           right=("series",))  # fmt: skip


@app.command("show")
def show_command(
    name: Annotated[
        str, typer.Argument(metavar="METRIC", help="Metric name, e.g. orrery_bus_events_total.")
    ],
    state_dir: StateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """One metric: every series with its value, or its statistics and percentiles."""
    metric = _call(_connect(state_dir, url, token), f"{BASE}/metrics/{_quoted(name)}")
    if as_json:
        _print_json(metric)
        return
    series = metric["series"]
    title = f"{metric['name']} ({metric['type']}) {metric['help']}".strip()
    if metric["type"] in ("counter", "gauge"):
        values = [(_labels(s["labels"]), _number(s["value"])) for s in series]
        _table(("labels", "value"), values, wide=wide, title=title, right=("value",))
        return
    rows: list[tuple[str, ...]] = [
        (_labels(s["labels"]), *(_number(s.get(k)) for k in _TABLE_STATS)) for s in series
    ]
    _table(("labels", *_TABLE_STATS), rows, wide=wide, title=title, right=_TABLE_STATS)


@app.command("export")
def export_command(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="json, csv or prometheus.")
    ] = ExportFormat.json,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to this file, not stdout."),
    ] = None,
    state_dir: StateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Every metric's current values, as JSON, CSV or the Prometheus text format."""
    client = _connect(state_dir, url, token)
    path = f"{BASE}/export?format={fmt.value}"
    if fmt is ExportFormat.json:
        text = json.dumps(_call(client, path), indent=2) + "\n"
    else:
        text = _text(client, path)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command("anomaly")
def anomaly_command(
    value: Annotated[float, typer.Argument(metavar="VALUE", help="The value to check.")],
    selector: Annotated[
        str | None,
        typer.Option(metavar="SELECTOR", help="Stored series to judge it by, e.g. 'latency_ms'."),
    ] = None,
    history: Annotated[
        str | None,
        typer.Option(metavar="NUMBERS", help="Or the history itself: comma-separated values."),
    ] = None,
    stat: Annotated[str, typer.Option(metavar="STAT", help="Series statistic.")] = "value",
    method: Annotated[Method, typer.Option(help="Detector.")] = Method.zscore,
    sensitivity: Annotated[
        float, typer.Option(metavar="FACTOR", min=0.01, help="2 flags more, 0.5 fewer.")
    ] = 1.0,
    window: Annotated[int, typer.Option(metavar="COUNT", min=5, help="Samples learned.")] = 60,
    state_dir: StateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Whether VALUE would be an anomaly for a series (nothing is recorded)."""
    if (selector is None) == (history is None):
        _fail(ValueError("give exactly one of --selector SELECTOR or --history NUMBERS"), 2)
    body: dict[str, Any] = {
        "value": value,
        "stat": stat,
        "method": method.value,
        "sensitivity": sensitivity,
        "window": window,
    }
    if selector is not None:
        body["selector"] = selector
    if history is not None:
        body["history"] = history
    client = _connect(state_dir, url, token)
    verdict = _call(client, f"{BASE}/anomaly", "POST", body)
    if as_json:
        _print_json(verdict)
        return
    rows = [
        (
            r["metric"] or "history",
            _labels(r["labels"]),
            "ANOMALY" if r["anomaly"] else ("warming up" if r["warming_up"] else "normal"),
            _number(r["score"]) if r["score"] is not None else "inf",
            _number(r["expected"]),
            str(r["samples"]),
        )
        for r in verdict["series"]
    ]
    title = f"{value:g} by {verdict['method']} (threshold {verdict['threshold']:g})"
    columns = ("series", "labels", "verdict", "score", "expected", "samples")
    _table(columns, rows, wide=wide, title=title, right=("score", "expected", "samples"))


@app.command("dash")
def dash_command(
    name: Annotated[
        str, typer.Argument(metavar="DASHBOARD", help="Dashboard name (GET .../dashboards).")
    ],
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval",
            "-n",
            min=0.1,
            metavar="SECONDS",
            help="Seconds between refreshes (default: the dashboard's own).",
        ),
    ] = None,  # fmt: skip
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame and exit (for scripts and tests).")
    ] = False,
    state_dir: StateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Draw a dashboard in the terminal and keep it live until Ctrl-C."""
    client = _connect(state_dir, url, token)
    path = f"{BASE}/dashboards/{_quoted(name)}"

    def fetch() -> dict[str, Any]:
        rendered: dict[str, Any] = _call(client, path)
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
