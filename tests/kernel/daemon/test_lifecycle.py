"""The daemon as a process: the state-dir lock, graceful drain on signals, logs."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from orrery.kernel.daemon import read_daemon_file

from .support import DaemonProcess, clean_env, http_get, spawn_daemon


def test_a_second_daemon_on_the_same_state_dir_is_refused(daemon_process: DaemonProcess) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "orrery.kernel.cli", "daemon", "--port", "0",
         "--state-dir", str(daemon_process.state_dir), "--no-entry-points"],
        capture_output=True, text=True, timeout=60, env=clean_env(),
    )
    assert second.returncode == 2
    message = " ".join(second.stderr.split())
    assert f"pid {daemon_process.proc.pid}" in message
    assert "--state-dir" in message and "Traceback" not in second.stderr
    # The first one is untouched: still serving, still named in daemon.json.
    assert http_get(daemon_process.url + "/v1/health")[0] == 200
    address = read_daemon_file(daemon_process.state_dir)
    assert address is not None and address.pid == daemon_process.proc.pid


async def _load(url: str, token: str, acked: list[str], workers: int = 16) -> None:
    """POST events until the daemon stops answering; record every acknowledged id."""
    headers = {"Authorization": f"Bearer {token}"}
    counter = iter(range(10**9))

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            n = next(counter)
            try:
                async with session.post(
                    "/v1/events", json={"topic": f"load.w{n % workers}", "data": n}
                ) as response:
                    if response.status != 202:
                        return  # 503 while draining: not acknowledged
                    acked.append((await response.json())["id"])
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                return

    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(workers)))


async def test_sigterm_under_load_exits_0_and_loses_nothing_acknowledged(
    daemon_process: DaemonProcess, sink_file: Path
) -> None:
    acked: list[str] = []
    load = asyncio.create_task(_load(daemon_process.url, daemon_process.token, acked))
    async with asyncio.timeout(60):
        while len(acked) < 300:
            await asyncio.sleep(0.01)  # polling a counter, not synchronising with the daemon
            assert not load.done(), daemon_process.log
    daemon_process.proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        await load
    code = await asyncio.to_thread(daemon_process.proc.wait, 60)
    log = daemon_process.log
    assert code == 0, log
    assert "Traceback" not in log
    delivered = set(sink_file.read_text().split())
    missing = [i for i in acked if i not in delivered]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events were lost"
    assert read_daemon_file(daemon_process.state_dir) is None
    # The lock went with the process: a new daemon starts on the same state dir.
    again = spawn_daemon(daemon_process.state_dir, log_path=daemon_process.log_path)
    try:
        again.wait_ready()
    finally:
        assert again.stop() == 0


def test_sigint_exits_0_and_logs_json_on_request(tmp_path: Path) -> None:
    handle = spawn_daemon(tmp_path / "s", "--log-format", "json")
    try:
        handle.wait_ready()
    finally:
        code = handle.stop(signal.SIGINT)
    assert code == 0, handle.log
    lines = [json.loads(line) for line in handle.log.splitlines()]
    messages = [entry["message"] for entry in lines]
    assert any("listening on http://127.0.0.1:" in m for m in messages)
    assert any("stopped" in m for m in messages)


def test_an_occupied_port_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "orrery.kernel.cli", "daemon", "--port", str(port),
             "--state-dir", str(tmp_path / "s"), "--no-entry-points"],
            capture_output=True, text=True, timeout=60, env=clean_env(),
        )
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr
    assert read_daemon_file(tmp_path / "s") is None


@pytest.mark.parametrize("flag", ["--log-format"])
def test_bad_log_format_is_rejected(tmp_path: Path, flag: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orrery.kernel.cli", "daemon", flag, "xml",
         "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=clean_env(),
    )
    assert out.returncode == 2
