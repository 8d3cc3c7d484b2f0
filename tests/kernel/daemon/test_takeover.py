"""A daemon that died without stopping leaves its state directory to the next one."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from orrery.kernel.daemon import read_daemon_file

from .support import http_get, no_proxy_opener, spawn_daemon


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
