"""Dashboards in the terminal with rich, from the JSON `render_dashboard` produces.

Working from the JSON (not the engine) lets a CLI fetch a dashboard from the daemon's
HTTP API and draw it, e.g. for ``orrery metrics dash NAME``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = ["graph_line", "live_dashboard", "render_rich", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
_TABLE_STATS = ("value", "count", "avg", "min", "max", "p50", "p90", "p99")


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


def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.4g}{(' ' + unit) if unit else ''}"


def _labels(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "-"


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
        stats = [s for s in _TABLE_STATS if any(s in row for row in series)]
        table.add_column("series")
        for stat in stats:
            table.add_column(stat, justify="right")
        for row in series:
            table.add_row(_labels(row["labels"]), *(_number(row.get(s)) for s in stats))
    elif kind == "graph":
        for line in series:
            points = line["points"]
            last = points[-1][1] if points else None
            drawn = graph_line(points, widget.get("start"), widget.get("end"))
            table.add_row(_labels(line["labels"]), drawn, _number(last, unit))
    else:
        for item in series:
            value = item["value"]
            text = Text(_number(value, unit), style=_colour(value, widget.get("thresholds", [])))
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
