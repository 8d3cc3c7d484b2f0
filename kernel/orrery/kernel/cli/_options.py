"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "ConfigOpt",
    "EntryPointsOpt",
    "LogFormatOpt",
    "LogLevelOpt",
    "PluginsDirOpt",
    "StateDirOpt",
]

PluginsDirOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--plugins-dir", metavar="DIR", help="Plugin folder to load and watch (repeatable)."
    ),
]
StateDirOpt = Annotated[
    Path, typer.Option("--state-dir", metavar="DIR", help="Where the kernel keeps its state.")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", metavar="FILE", help="orrery.toml configuration file."),
]
EntryPointsOpt = Annotated[
    bool,
    typer.Option(
        "--entry-points/--no-entry-points",
        help="Discover plugins installed with pip (entry-point group orrery.plugins).",
    ),
]
LogLevelOpt = Annotated[
    str, typer.Option("--log-level", metavar="LEVEL", help="debug, info, warning or error.")
]
LogFormatOpt = Annotated[str, typer.Option("--log-format", metavar="FORMAT", help="text or json.")]
