"""The state directory: one kernel at a time, owner-only permissions, clean teardown."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from orrery.kernel import Kernel
from orrery.kernel.errors import KernelError, StateDirLocked

from .conftest import KernelFactory


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_two_kernels_on_one_state_dir_the_second_is_refused_naming_the_first(
    make_kernel: KernelFactory, tmp_path: Path
) -> None:
    async with make_kernel(state_dir=tmp_path / "shared") as first:
        second = Kernel(state_dir=tmp_path / "shared", entry_points=False, env={})
        with pytest.raises(StateDirLocked) as refused:
            await second.start()
        assert refused.value.pid == os.getpid()
        assert f"pid {os.getpid()}" in str(refused.value)
        assert "state directory" in str(refused.value)
        # The first kernel is untouched by the attempt.
        assert await first.bus.publish("still.here", {}) is not None
    # Released on stop: the next kernel starts on the same directory.
    async with make_kernel(state_dir=tmp_path / "shared") as again:
        assert again.node_id == first.node_id


async def test_state_dir_is_private_whatever_the_umask(
    make_kernel: KernelFactory, tmp_path: Path, umask_022: None
) -> None:
    state = tmp_path / "fresh" / "state"
    async with make_kernel(state_dir=state) as k:
        await k.storage.store("p").put("secret", {"card": "4111"})
        files = [p for p in state.rglob("*") if p.is_file()]
        names = {p.name for p in files}
        assert {"orrery.db", "node_id", "daemon.lock"} <= names
        assert any(n.endswith("-wal") for n in names), names  # SQLite's WAL is there too
        assert _mode(state) == 0o700
        assert {p.name: oct(_mode(p)) for p in files} == {p.name: "0o600" for p in files}


async def test_an_existing_open_state_dir_is_reported(
    make_kernel: KernelFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "open"
    state.mkdir()
    os.chmod(state, 0o755)
    with caplog.at_level("WARNING", logger="orrery.kernel"):
        async with make_kernel(state_dir=state):
            pass
    assert any(f"chmod 700 {state}" in r.getMessage() for r in caplog.records), caplog.text


async def test_a_watcher_failure_after_plugins_started_stops_them_in_reverse(
    tmp_path: Path, plugins_dir: Path, recording_plugin, journal_file: Path
) -> None:
    # The last plugin to start removes the watched folder, so watching it fails after
    # every plugin has started: all of them must be stopped again, last first.
    recording_plugin("base")
    recording_plugin(
        "top",
        requires={"base": ""},
        start_body=f"import shutil; shutil.rmtree({str(plugins_dir)!r})",
    )
    kernel = Kernel(
        plugins_dirs=[plugins_dir],
        state_dir=tmp_path / "s",
        entry_points=False,
        env={},
        watch=True,
    )
    with pytest.raises(KernelError, match="cannot watch plugin folders"):
        await kernel.start()
    assert journal_file.read_text().split("\n")[:-1] == [
        "start base",
        "start top",
        "stop top",
        "stop base",
    ]
    assert {n: str(i.state) for n, i in kernel.plugins.items()} == {
        "base": "stopped",
        "top": "stopped",
    }
    # Storage and the lock went too: another kernel opens the same state directory.
    async with Kernel(state_dir=tmp_path / "s", entry_points=False, env={}) as again:
        assert again.node_id == kernel.node_id
