"""``orrery run``: the kernel in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from orrery.kernel import Kernel, configure_logging

from ._options import (
    ConfigOpt,
    EntryPointsOpt,
    LogFormatOpt,
    LogLevelOpt,
    PluginsDirOpt,
    StateDirOpt,
)

__all__ = ["run_command", "run_kernel"]

log = logging.getLogger("orrery.kernel")


async def run_kernel(kernel: Kernel) -> None:
    """Run ``kernel`` until SIGINT or SIGTERM, then stop it cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with kernel:
            log.info("running; press Ctrl-C to stop")
            await stop.wait()
            log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def run_command(
    plugins_dir: PluginsDirOpt = None,
    state_dir: StateDirOpt = Path(".orrery"),
    config: ConfigOpt = None,
    entry_points: EntryPointsOpt = True,
    log_level: LogLevelOpt = "info",
    log_format: LogFormatOpt = "text",
) -> None:
    configure_logging(log_level, "json" if log_format == "json" else "text")
    kernel = Kernel(
        plugins_dirs=plugins_dir or [],
        state_dir=state_dir,
        config=config,
        entry_points=entry_points,
    )
    asyncio.run(run_kernel(kernel))
