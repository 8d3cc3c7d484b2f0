"""``orrery metrics ...``: the command line of the metrics plugin (the only part of the
plugin that imports typer and rich)."""

from ._commands import BASE, app
from ._terminal import graph_line, live_dashboard, render_rich, sparkline

__all__ = ["BASE", "app", "graph_line", "live_dashboard", "render_rich", "sparkline"]
