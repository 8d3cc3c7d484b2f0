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
    typer.Option("--plugins-dir", help="Plugin folder to load and watch (repeatable)."),
]
StateDirOpt = Annotated[Path, typer.Option("--state-dir", help="Where the kernel keeps its state.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="orrery.toml configuration file.")]
EntryPointsOpt = Annotated[
    bool,
    typer.Option(
        "--entry-points/--no-entry-points",
        help="Discover plugins installed with pip (entry-point group orrery.plugins).",
    ),
]
LogLevelOpt = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
LogFormatOpt = Annotated[str, typer.Option("--log-format", help="text or json.")]
