"""Running pip in the kernel's own environment, with its output streamed."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence

from orrery.kernel.errors import PluginError

__all__ = ["run_pip"]


async def run_pip(args: Sequence[str], output: Callable[[str], None]) -> None:
    """Run ``python -m pip ARGS`` for the running interpreter, passing each output line
    to ``output``; raises `PluginError` with pip's last lines when it fails."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pip",
        "--disable-pip-version-check",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    tail: list[str] = []
    async for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip()
        output(line)
        tail = [*tail[-9:], line]
    code = await proc.wait()
    if code != 0:
        joined = "\n".join(tail)
        raise PluginError(f"pip {' '.join(args)} failed (exit {code}):\n{joined}")
