"""The daemon's lifecycle: lock, token, kernel, HTTP listener; graceful drain on signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import asdict
from typing import Any

from aiohttp import web
from orrery.kernel import Kernel
from orrery.kernel.errors import StateDirLocked
from orrery.sdk.client import forget_daemon, remember_daemon

from ._api_system import DRAINING
from ._app import build_app
from ._guard import ConnectionGuard, listen
from ._http import DaemonSettings
from ._lock import DaemonAddress, remove_daemon_file, write_daemon_file
from ._logs import LogBuffer
from ._token import TOKEN_FILE, load_or_create_token
from .errors import CannotListen, DaemonLocked

__all__ = ["Daemon", "serve"]

log = logging.getLogger("orrery.kernel.daemon")
_ACCESS_LOG = logging.getLogger("orrery.kernel.daemon.access")


def _probe_sandbox() -> list[dict[str, Any]] | None:
    try:
        from orrery.sandbox import detect_layers
    except ImportError:
        return None
    return [asdict(layer) for layer in detect_layers().values()]


class Daemon:
    """``orrery daemon``: a kernel behind the HTTP API.

    ::

        daemon = Daemon(Kernel(state_dir=".orrery"), port=0)
        await daemon.start()      # lock, token, kernel, listener, daemon.json
        print(daemon.url)
        await daemon.stop()       # drain HTTP, settle the bus, stop the kernel

    Only one daemon runs per state directory; a second gets `DaemonLocked`.
    """

    def __init__(
        self,
        kernel: Kernel,
        *,
        host: str = "127.0.0.1",
        port: int = 7878,
        max_body_size: int = 1 << 20,
        grace_period: float = 10.0,
        replay_size: int | None = None,
        access_log: bool = False,
        metrics_open: bool = False,
        replay_bytes: int | None = None,
        header_timeout: float | None = None,
        idle_timeout: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        # Arguments (the command-line flags) win over [daemon] in the configuration.
        section = kernel.config.daemon
        self.kernel = kernel
        self.host = host
        self.port = port
        self.max_body_size = max_body_size
        self.grace_period = grace_period
        self.replay_size = section.replay_size if replay_size is None else replay_size
        self.replay_bytes = section.replay_bytes if replay_bytes is None else replay_bytes
        self.idle_timeout = section.idle_timeout if idle_timeout is None else idle_timeout
        self.guard = ConnectionGuard(
            header_timeout=section.header_timeout if header_timeout is None else header_timeout,
            max_connections=(
                section.max_connections if max_connections is None else max_connections
            ),
        )
        self.access_log = access_log
        self.metrics_open = metrics_open
        self.url = ""
        self.settings: DaemonSettings | None = None
        self._lock = kernel.state_lock
        #: Plugin log records for GET /v1/logs, collected from before the kernel starts.
        self.logs = LogBuffer()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._app: web.Application | None = None
        self._kernel_started = False

    @property
    def token_path(self) -> str:
        """Where the API token is kept (``<state-dir>/token``)."""
        return str(self.kernel.state_dir / TOKEN_FILE)

    async def start(self) -> None:
        """Take the state-dir lock, start the kernel, then listen. Undone on failure."""
        try:
            # The kernel's own lock, taken before the token is read or made.
            self._lock.acquire()
        except StateDirLocked as e:
            raise DaemonLocked(e.state_dir, e.pid, inherited=e.inherited) from None
        probe: asyncio.Task[Any] | None = None
        try:
            token = load_or_create_token(self.kernel.state_dir)
            # The probe runs subprocesses: overlap it with the kernel's start.
            probe = asyncio.create_task(asyncio.to_thread(_probe_sandbox), name="sandbox-probe")
            self.logs.attach(asyncio.get_running_loop())
            await self.kernel.start()
            self._kernel_started = True
            layers = await self._sandbox_layers(probe)
            self.settings = DaemonSettings(
                token=token,
                max_body_size=self.max_body_size,
                grace_period=self.grace_period,
                replay_size=self.replay_size,
                replay_bytes=self.replay_bytes,
                sandbox_layers=layers,
                metrics_open=self.metrics_open,
            )
            await self._listen(self.settings)
        except BaseException:
            if probe is not None and not probe.done():
                probe.cancel()
            await self._teardown()
            raise
        log.info("orrery daemon listening on %s (API token in %s)", self.url, self.token_path)

    @staticmethod
    async def _sandbox_layers(probe: asyncio.Task[Any]) -> list[dict[str, Any]] | None:
        try:
            async with asyncio.timeout(15):
                result: list[dict[str, Any]] | None = await probe
                return result
        except Exception as e:
            log.warning("could not probe sandbox layers (%s); status reports them as unknown", e)
            return None

    async def _listen(self, settings: DaemonSettings) -> None:
        app = build_app(self.kernel, settings, guard=self.guard, logs=self.logs)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=_ACCESS_LOG if self.access_log else None,
            shutdown_timeout=self.grace_period,
            keepalive_timeout=self.idle_timeout,
        )
        self._app, self._runner = app, runner
        await runner.setup()
        try:
            self._listener = await listen(runner, self.host, self.port, self.guard)
        except OSError as e:
            raise CannotListen(
                f"cannot listen on {self.host}:{self.port}: {e.strerror or e}; pick another "
                f"--port or stop whatever uses this one"
            ) from e
        host, port = self._listener.sockets[0].getsockname()[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self.url = settings.url = f"http://{shown}:{port}"
        write_daemon_file(self.kernel.state_dir, DaemonAddress(self.url, os.getpid(), time.time()))
        # So `orrery <command>` finds this daemon from any directory.
        remember_daemon(self.kernel.state_dir, self.url, os.getpid())

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def stop(self) -> None:
        """Drain: refuse new connections, finish in-flight requests (bounded by the grace
        period), let the bus deliver what was acknowledged, stop plugins in reverse order
        and close storage. Idempotent."""
        began = time.monotonic()
        if self._app is not None:
            self._app[DRAINING]["since"] = began
        self._close_listener()
        if self._runner is not None:
            log.info("draining HTTP requests (grace period %gs)", self.grace_period)
            await self._runner.cleanup()
            self._runner = None
        if self._kernel_started:
            remaining = max(0.5, self.grace_period - (time.monotonic() - began))
            await _settle_bus(self.kernel, remaining)
        await self._teardown()

    async def _teardown(self) -> None:
        self._close_listener()
        self.logs.detach()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._lock.held:
            forget_daemon(self.kernel.state_dir, os.getpid())
            remove_daemon_file(self.kernel.state_dir)
        if self._kernel_started:
            self._kernel_started = False
            await self.kernel.stop()  # releases the state-directory lock
        self._lock.release()


async def _settle_bus(kernel: Kernel, timeout: float) -> None:
    """Wait until every subscriber has handled what it was given: an event the API
    acknowledged must be delivered before plugins stop."""
    await kernel.quiesce(timeout)


async def serve(daemon: Daemon) -> None:
    """Run ``daemon`` until SIGTERM or SIGINT, then drain and stop it."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if stopping.is_set():
            log.warning("%s again: already draining, please wait", sig.name)
            return
        log.info("%s received: stopping", sig.name)
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await daemon.start()
        await stopping.wait()
    finally:
        try:
            await daemon.stop()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError, RuntimeError):
                    loop.remove_signal_handler(sig)
    log.info("orrery daemon stopped")
