"""CLI conventions: exit codes, one-line errors, JSON, and tables that fit 80 columns.

Exit codes are the same for every command (plugins' commands included, since they
run under the same entry point): 0 done, 1 the operation failed (a plugin that stays
failed, a rejected reload, a request without reply, a server error), 2 the command
could not be carried out as given (bad usage or input, unknown plugin, no daemon).
The mapping is `orrery.sdk.cli.exit_code`, so kernel and plugin commands agree: an
unknown name (404) is an operation that failed (1), as with most command-line tools.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import typer
from orrery.sdk import OrreryError
from orrery.sdk.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "ClickException",
    "Failed",
    "UsageError",
    "print_error",
    "print_json",
    "print_table",
    "table_width",
]

# typer may bundle its own click: take the exception bases from its public BadParameter.
ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)
UsageError: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)


class Failed(OrreryError):
    """The command ran but its operation failed (exit code 1), e.g. a plugin that
    stays ``failed`` after a reload."""


def print_error(message: str) -> None:
    """One line on stderr: ``error: <message>`` (newlines folded, no markup, no box)."""
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")
    sys.stderr.flush()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def table_width() -> int:
    """80 columns, or fewer on a narrower terminal."""
    columns = os.environ.get("COLUMNS")
    width = int(columns) if columns and columns.isdigit() else shutil.get_terminal_size().columns
    return max(40, min(80, width))


def _cut(text: str, width: int, keep_tail: bool) -> str:
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    # Paths keep their end (the file name), messages their beginning.
    return "…" + text[-(width - 1) :] if keep_tail else text[: width - 1] + "…"


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    wide: bool = False,
    title: str | None = None,
    shrink: Sequence[str] = (),
    keep_tail: Sequence[str] = ("source",),
    width: int | None = None,
) -> None:
    """A plain table: cells padded to fit ``width`` (80) columns by cutting the columns
    named in ``shrink`` (with "…"); ``wide`` prints every cell in full."""
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(columns)]
    limit = width or table_width()
    if not wide:
        shrinkable = [columns.index(c) for c in shrink if c in columns] or [len(columns) - 1]
        while sum(widths) + 2 * (len(widths) - 1) > limit:
            i = max(shrinkable, key=lambda k: widths[k])
            floor = max(len(columns[i]), 8)
            if widths[i] <= floor:
                break
            widths[i] -= 1
    out = sys.stdout
    if title:
        out.write(title + "\n")
    for row in [list(columns), *cells]:
        parts = [
            _cut(cell, widths[i], columns[i] in keep_tail).ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        out.write("  ".join(parts).rstrip() + "\n")
