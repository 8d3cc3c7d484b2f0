"""``orrery metrics ...``: the metrics of a running daemon, from the command line.

The only module of the plugin importing typer and rich. Registered in the entry-point
group ``orrery.cli`` (the ``orrery`` command mounts it as
``orrery metrics``). The shared options, exit codes, one-line errors and 80-column
tables come from `orrery.sdk.cli`: exit 0 when the operation succeeded, 1 when the
daemon refused it (an unknown metric, dashboard or series), 2 for a usage or
connection problem. Dashboards are drawn from the JSON `render_dashboard` produces, so
``orrery metrics dash`` fetches one from the daemon's HTTP API and draws it.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from orrery.sdk import cli
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = ["BASE", "app", "graph_line", "live_dashboard", "render_rich", "sparkline"]

#: Where the daemon mounts the plugin's routes.
BASE = "/v1/plugins/metrics"
_TABLE_STATS = ("count", "avg", "min", "p50", "p90", "p99", "max")

app = cli.plugin_app(
    "metrics", help="Metrics of the running daemon: list, show, export, anomaly checks, dashboards."
)


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


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "-"


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:,.6g}"


def _quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# -- drawing dashboards ----------------------------------------------------------------

_BARS = "▁▂▃▄▅▆▇█"
_WIDGET_STATS = ("value", "count", "avg", "min", "max", "p50", "p90", "p99")


def sparkline(values: Sequence[float | None], width: int = 40) -> str:
    """Values as block characters scaled to their range (None: a gap); ``width`` at
    most, the most recent kept when there are more (`graph_line` spreads a time range
    over the width instead)."""
    recent = list(values)[-width:]
    finite = [v for v in recent if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    return "".join(
        " " if v is None or not math.isfinite(v) else _BARS[min(7, int((v - lo) / span * 8))]
        for v in recent
    )


def graph_line(
    points: Sequence[Sequence[float]],
    start: float | None = None,
    end: float | None = None,
    width: int = 40,
) -> str:
    """A sparkline of ``[t, value]`` points over the whole range ``[start, end]``: the
    range is cut into ``width`` columns, each showing the mean of its points (a gap
    where there are none), so the chosen window is drawn, not just its last points."""
    if not points:
        return ""
    first = points[0][0] if start is None else start
    last = points[-1][0] if end is None else end
    span = last - first
    if span <= 0:
        return sparkline([v for _, v in points], width)
    sums = [0.0] * width
    counts = [0] * width
    for t, value in points:
        if not math.isfinite(value) or not first <= t <= last:
            continue
        column = min(width - 1, int((t - first) / span * width))
        sums[column] += value
        counts[column] += 1
    return sparkline([s / n if n else None for s, n in zip(sums, counts, strict=True)], width)


def _value(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.4g}{(' ' + unit) if unit else ''}"


def _colour(value: float | None, thresholds: Sequence[float]) -> str:
    if value is None or not thresholds:
        return "cyan"
    passed = sum(value >= t for t in thresholds)
    colours: tuple[str, ...] = ("green", "yellow", "red")
    return colours[min(passed, 2)]


def _gauge_bar(value: float | None, lo: float, hi: float | None, width: int = 20) -> str:
    if value is None or hi is None or hi <= lo:
        return ""
    filled = round(max(0.0, min(1.0, (value - lo) / (hi - lo))) * width)
    return "█" * filled + "░" * (width - filled)


def _widget(widget: Mapping[str, Any]) -> RenderableType:
    kind, series, unit = widget["kind"], widget["series"], widget.get("unit", "")
    table = Table(show_header=kind == "table", box=None, expand=True)
    if kind == "table":
        stats = [s for s in _WIDGET_STATS if any(s in row for row in series)]
        table.add_column("series")
        for stat in stats:
            table.add_column(stat, justify="right")
        for row in series:
            table.add_row(_labels(row["labels"]), *(_value(row.get(s)) for s in stats))
    elif kind == "graph":
        for line in series:
            points = line["points"]
            last = points[-1][1] if points else None
            drawn = graph_line(points, widget.get("start"), widget.get("end"))
            table.add_row(_labels(line["labels"]), drawn, _value(last, unit))
    else:
        for item in series:
            value = item["value"]
            text = Text(_value(value, unit), style=_colour(value, widget.get("thresholds", [])))
            bar = _gauge_bar(value, widget.get("min", 0.0), widget.get("max"))
            table.add_row(_labels(item["labels"]), text, bar)
    if not series:
        table.add_row(Text("no data", style="dim"))
    return Panel(table, title=widget["title"], title_align="left")


def render_rich(rendered: Mapping[str, Any]) -> RenderableType:
    """A rich renderable of a rendered dashboard."""
    when = time.strftime("%H:%M:%S", time.localtime(rendered.get("time", time.time())))
    header = Text(f"{rendered['title']}  ·  {when}", style="bold")
    return Group(header, Columns([_widget(w) for w in rendered["widgets"]], expand=True))


def live_dashboard(
    fetch: Callable[[], Mapping[str, Any]],
    *,
    console: Console | None = None,
    refreshes: int | None = None,
    interval: float | None = None,
) -> None:
    """Draw ``fetch()`` and redraw it every ``interval`` seconds (default: the
    dashboard's own ``refresh``).

    Runs until interrupted (Ctrl-C raises KeyboardInterrupt out of the wait), or for
    ``refreshes`` draws in all.
    """
    rendered = fetch()
    drawn = 1
    with Live(render_rich(rendered), console=console, auto_refresh=False) as live:
        while refreshes is None or drawn < refreshes:
            # A refresh pace for a human watching, not synchronisation.
            time.sleep(interval if interval is not None else float(rendered.get("refresh", 15.0)))
            rendered = fetch()
            live.update(render_rich(rendered), refresh=True)
            drawn += 1


# -- commands ----------------------------------------------------------------------------


@app.command("ls")
@cli.handle_errors
def ls_command(
    state_dir: cli.StateDirOpt = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """List every metric: name, type, number of series, help."""
    exported = cli.connect(url, token, state_dir).call("GET", f"{BASE}/export?format=json")
    rows = [
        {
            "name": m["name"],
            "type": m["type"],
            "labels": ",".join(m["labels"]),
            "series": len(m["series"]),
            "help": m["help"],
        }
        for m in exported["metrics"]
    ]
    if as_json:
        cli.print_json([{**r, "labels": r["labels"].split(",") if r["labels"] else []}
                        for r in rows])  # fmt: skip
        return
    cli.print_table(rows, ["name", "type", "labels", "series", "help"], wide=wide,
                    empty="no metrics")  # fmt: skip


@app.command("show")
@cli.handle_errors
def show_command(
    name: Annotated[
        str, typer.Argument(metavar="METRIC", help="Metric name, e.g. orrery_bus_events_total.")
    ],
    state_dir: cli.StateDirOpt = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """One metric: every series with its value, or its statistics and percentiles."""
    client = cli.connect(url, token, state_dir)
    metric = client.call("GET", f"{BASE}/metrics/{_quoted(name)}")
    if as_json:
        cli.print_json(metric)
        return
    typer.echo(f"{metric['name']} ({metric['type']}) {metric['help']}".strip())
    stats = ("value",) if metric["type"] in ("counter", "gauge") else _TABLE_STATS
    rows = [
        {"labels": _labels(s["labels"]), **{k: _number(s.get(k)) for k in stats}}
        for s in metric["series"]
    ]
    # The header even without series: it says which statistics there will be.
    typer.echo(cli.format_table(rows, ["labels", *stats], wide=wide))


@app.command("export")
@cli.handle_errors
def export_command(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="json, csv or prometheus.")
    ] = ExportFormat.json,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to this file, not stdout."),
    ] = None,
    state_dir: cli.StateDirOpt = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
) -> None:
    """Every metric's current values, as JSON, CSV or the Prometheus text format."""
    client = cli.connect(url, token, state_dir)
    path = f"{BASE}/export?format={fmt.value}"
    if fmt is ExportFormat.json:
        text = json.dumps(client.call("GET", path), indent=2) + "\n"
    else:
        text = client.text("GET", path)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command("anomaly")
@cli.handle_errors
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
    state_dir: cli.StateDirOpt = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """Whether VALUE would be an anomaly for a series (nothing is recorded)."""
    if (selector is None) == (history is None):
        raise cli.UsageError("give exactly one of --selector SELECTOR or --history NUMBERS")
    body: dict[str, Any] = {
        "value": value,
        "stat": stat,
        "method": method.value,
        "sensitivity": sensitivity,
        "window": window,
    }
    body.update({k: v for k, v in (("selector", selector), ("history", history)) if v})
    verdict = cli.connect(url, token, state_dir).call("POST", f"{BASE}/anomaly", body)
    if as_json:
        cli.print_json(verdict)
        return
    typer.echo(f"{value:g} by {verdict['method']} (threshold {verdict['threshold']:g})")
    rows = [
        {
            "series": r["metric"] or "history",
            "labels": _labels(r["labels"]),
            "verdict": "ANOMALY" if r["anomaly"] else "warming up" if r["warming_up"] else "normal",
            "score": "inf" if r["score"] is None else _number(r["score"]),
            "expected": _number(r["expected"]),
            "samples": r["samples"],
        }
        for r in verdict["series"]
    ]
    cli.print_table(rows, ["series", "labels", "verdict", "score", "expected", "samples"],
                    wide=wide)  # fmt: skip


@app.command("dash")
@cli.handle_errors
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
    state_dir: cli.StateDirOpt = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Draw a dashboard in the terminal and keep it live until Ctrl-C."""
    client = cli.connect(url, token, state_dir)
    path = f"{BASE}/dashboards/{_quoted(name)}"

    def fetch() -> dict[str, Any]:
        rendered: dict[str, Any] = client.call("GET", path)
        return rendered

    if as_json:
        cli.print_json(fetch())
        return
    if once:
        Console().print(render_rich(fetch()))
        return
    try:
        live_dashboard(fetch, interval=interval)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a live dashboard is meant to end
