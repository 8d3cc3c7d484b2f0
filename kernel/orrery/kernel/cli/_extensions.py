"""Sub-commands contributed by installed plugins (entry-point group ``orrery.cli``)."""

from __future__ import annotations

import importlib_metadata
import typer
from rich.console import Console

__all__ = ["CLI_ENTRY_POINT_GROUP", "mount_extensions"]

CLI_ENTRY_POINT_GROUP = "orrery.cli"


def mount_extensions(app: typer.Typer, taken: set[str]) -> None:
    """Add every ``orrery.cli`` entry point (a typer app) as ``orrery <name> ...``.

    A broken extension is reported on stderr and skipped: one bad plugin must not take
    the whole command line down.
    """
    for ep in importlib_metadata.entry_points(group=CLI_ENTRY_POINT_GROUP):
        if ep.name in taken:
            Console(stderr=True, soft_wrap=True).print(
                f"[yellow]warning:[/] ignoring CLI extension {ep.name!r} ({ep.value}): the "
                f"name is a built-in command",
                highlight=False,
            )
            continue
        try:
            sub = ep.load()
        except Exception as e:  # noqa: BLE001 - any import failure of third-party code
            Console(stderr=True, soft_wrap=True).print(
                f"[yellow]warning:[/] CLI extension {ep.name!r} ({ep.value}) failed to load: "
                f"{type(e).__name__}: {e}",
                highlight=False,
            )
            continue
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=ep.name)
        else:
            Console(stderr=True, soft_wrap=True).print(
                f"[yellow]warning:[/] CLI extension {ep.name!r} ({ep.value}) is not a typer.Typer",
                highlight=False,
            )
