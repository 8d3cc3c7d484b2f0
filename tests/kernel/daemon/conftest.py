"""Daemon fixtures: real daemons on loopback ephemeral ports, in process or as processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from orrery.kernel import Kernel
from orrery.kernel.daemon import Daemon

from .plugins_src import GUARD, ROUTES, SINK
from .support import DaemonProcess, spawn_daemon


@pytest.fixture
def sink_file(tmp_path: Path) -> Path:
    return tmp_path / "sink.txt"


@pytest.fixture
def daemon_plugins(plugins_dir: Path, sink_file: Path) -> Path:
    (plugins_dir / "routes.py").write_text(ROUTES)
    (plugins_dir / "sink.py").write_text(SINK.format(out=str(sink_file)))
    (plugins_dir / "guard.py").write_text(GUARD)
    return plugins_dir


@pytest.fixture
async def daemon(tmp_path: Path, daemon_plugins: Path) -> AsyncIterator[Daemon]:
    """A started in-process daemon serving the test plugins."""
    kernel = Kernel(
        plugins_dirs=[daemon_plugins], state_dir=tmp_path / "state", entry_points=False, env={}
    )
    d = Daemon(kernel, port=0, max_body_size=64 * 1024, grace_period=5.0, replay_size=50)
    await d.start()
    try:
        yield d
    finally:
        await d.stop()


@pytest.fixture
def token(daemon: Daemon) -> str:
    assert daemon.settings is not None
    return daemon.settings.token


@pytest.fixture
async def api(daemon: Daemon, token: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session with the bearer token, relative to the daemon's URL."""
    async with aiohttp.ClientSession(
        base_url=daemon.url, headers={"Authorization": f"Bearer {token}"}
    ) as session:
        yield session


@pytest.fixture
async def anonymous(daemon: Daemon) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=daemon.url) as session:
        yield session


@pytest.fixture
def daemon_process(tmp_path: Path, daemon_plugins: Path) -> Iterator[DaemonProcess]:
    """A ready daemon subprocess with the test plugins; stopped (SIGTERM) afterwards."""
    handle = spawn_daemon(tmp_path / "pstate", "--plugins-dir", str(daemon_plugins))
    try:
        handle.wait_ready()
        yield handle
    finally:
        if handle.proc.poll() is None:
            handle.stop()
        if handle.proc.poll() is None:
            handle.proc.kill()
