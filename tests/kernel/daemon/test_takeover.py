"""A daemon that died without stopping leaves its state directory to the next one."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from orrery.kernel.daemon import read_daemon_file

from .support import clean_env, http_get, no_proxy_opener, spawn_daemon


def _plugins(url: str, token: str) -> dict[str, dict[str, object]]:
    import urllib.request

    request = urllib.request.Request(
        url + "/v1/plugins", headers={"Authorization": f"Bearer {token}"}
    )
    with no_proxy_opener.open(request, timeout=10) as response:
        body = json.loads(response.read())
    items = body["plugins"] if isinstance(body, dict) else body
    return {p["name"]: p for p in items}


def test_a_sigkilled_daemon_is_taken_over_with_a_log_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = spawn_daemon(state)
    try:
        first.wait_ready()
    finally:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(60)
    stale = read_daemon_file(state)
    assert stale is not None and stale.pid == first.proc.pid  # left behind by the kill

    second = spawn_daemon(state, log_path=tmp_path / "second.log")
    try:
        second.wait_ready()
        assert http_get(second.url + "/v1/health")[0] == 200
        log = " ".join(second.log.split())
        assert f"taking over state directory {state} from pid {first.proc.pid}" in log
        assert f"replacing the stale daemon.json of pid {first.proc.pid}" in log
        address = read_daemon_file(state)
        assert address is not None and address.pid == second.proc.pid
    finally:
        assert second.stop() == 0, second.log


def test_a_plugin_calling_os_exit_at_import_leaves_the_daemon_serving(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "quitter.py").write_text("import os\nos._exit(3)\n")
    for attempt in ("first", "second"):  # the next start must not die either
        handle = spawn_daemon(
            tmp_path / "state", "--plugins-dir", str(plugins), log_path=tmp_path / f"{attempt}.log"
        )
        try:
            handle.wait_ready()
            quitter = _plugins(handle.url, handle.token)["quitter"]
            assert quitter["state"] == "failed"
            assert "os._exit(3)" in str(quitter["error"])
        finally:
            assert handle.stop() == 0, handle.log


def test_orrery_run_beside_a_daemon_is_refused_naming_its_pid(tmp_path: Path) -> None:
    state = tmp_path / "state"
    daemon = spawn_daemon(state)
    try:
        daemon.wait_ready()
        run = subprocess.run(
            [sys.executable, "-m", "orrery.kernel.cli", "run", "--state-dir", str(state),
             "--no-entry-points"],
            capture_output=True, text=True, timeout=60, env=clean_env(),
        )
        assert run.returncode == 2, run.stderr
        message = " ".join(run.stderr.split())
        assert f"pid {daemon.proc.pid}" in message and "Traceback" not in run.stderr
        assert http_get(daemon.url + "/v1/health")[0] == 200
    finally:
        assert daemon.stop() == 0, daemon.log


def test_a_daemon_under_umask_022_keeps_its_state_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = os.umask(0o022)  # the daemon inherits it
    try:
        daemon = spawn_daemon(state)
    finally:
        os.umask(old)
    try:
        daemon.wait_ready()
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.rglob("*") if p.is_file()}
        assert {"token", "daemon.json", "daemon.lock", "node_id", "orrery.db"} <= set(files)
        assert {n: oct(m) for n, m in files.items()} == {n: "0o600" for n in files}
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
    finally:
        assert daemon.stop() == 0, daemon.log
