"""``orrery daemon`` and ``orrery token``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from orrery.kernel import Kernel, configure_logging
from orrery.kernel.daemon import Daemon, read_token, serve

from ._options import (
    ConfigOpt,
    EntryPointsOpt,
    LogFormatOpt,
    LogLevelOpt,
    PluginsDirOpt,
    StateDirOpt,
)

__all__ = ["daemon_command", "token_command"]


def daemon_command(
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, metavar="PORT", help="Port to listen on (0: any free one)."
        ),
    ] = 7878,
    plugins_dir: PluginsDirOpt = None,
    state_dir: StateDirOpt = Path(".orrery"),
    config: ConfigOpt = None,
    entry_points: EntryPointsOpt = True,
    log_level: LogLevelOpt = "info",
    log_format: LogFormatOpt = "text",
    grace_period: Annotated[
        float,
        typer.Option(
            "--grace-period",
            min=0.0,
            metavar="SECONDS",
            help="Seconds to drain requests on SIGTERM.",
        ),
    ] = 10.0,
    max_body_size: Annotated[
        int,
        typer.Option(
            "--max-body-size", min=1024, metavar="BYTES", help="Largest request body, in bytes."
        ),
    ] = 1 << 20,
    replay_size: Annotated[
        int | None,
        typer.Option(
            "--replay-size",
            min=1,
            metavar="EVENTS",
            help="Recent events kept for Last-Event-ID resume ([daemon] replay_size, 10000).",
        ),
    ] = None,
    replay_bytes: Annotated[
        int | None,
        typer.Option(
            "--replay-bytes",
            min=1024,
            metavar="BYTES",
            help="...and at most this many bytes of them ([daemon] replay_bytes, 64 MiB).",
        ),
    ] = None,
    header_timeout: Annotated[
        float | None,
        typer.Option(
            "--header-timeout",
            min=0.001,
            metavar="SECONDS",
            help="Time a client has to send request headers ([daemon] header_timeout, 10).",
        ),
    ] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--idle-timeout",
            min=0.001,
            metavar="SECONDS",
            help="Idle keep-alive connections are closed after this ([daemon] idle_timeout, 75).",
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(
            "--max-connections",
            min=1,
            metavar="N",
            help="Open connections at most; more get 503 ([daemon] max_connections, 1024).",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every HTTP request.")
    ] = False,
    metrics_open: Annotated[
        bool,
        typer.Option(
            "--metrics-open/--no-metrics-open",
            help="Serve GET /metrics without a token (for scrapers that cannot send one).",
        ),
    ] = False,
) -> None:
    """Run the kernel behind the HTTP API until SIGTERM or Ctrl-C."""
    if log_format not in ("text", "json"):
        raise typer.BadParameter("use 'text' or 'json'", param_hint="--log-format")
    configure_logging(log_level, "json" if log_format == "json" else "text")
    kernel = Kernel(
        plugins_dirs=plugins_dir or [],
        state_dir=state_dir,
        config=config,
        entry_points=entry_points,
    )
    daemon = Daemon(
        kernel,
        host=host,
        port=port,
        grace_period=grace_period,
        max_body_size=max_body_size,
        replay_size=replay_size,
        replay_bytes=replay_bytes,
        header_timeout=header_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        access_log=access_log,
        metrics_open=metrics_open,
    )
    asyncio.run(serve(daemon))


def token_command(state_dir: StateDirOpt = Path(".orrery")) -> None:
    """Print the daemon's API token (send it as 'Authorization: Bearer <token>')."""
    typer.echo(read_token(state_dir))
