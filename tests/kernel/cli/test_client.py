"""The CLI as a client of a running daemon: status, plugins, publish, tail, token."""

from __future__ import annotations

import importlib.util
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _support() -> ModuleType:
    # The daemon tests' process helpers, loaded by path: test folders are not packages.
    path = Path(__file__).parents[1] / "daemon" / "support.py"
    spec = importlib.util.spec_from_file_location("orrery_daemon_test_support", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


support = _support()
DaemonProcess = support.DaemonProcess
clean_env = support.clean_env
spawn_daemon = support.spawn_daemon
EXAMPLES = support.REPO / "examples" / "plugins"


def orrery(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orrery.kernel.cli", *args], cwd=cwd, capture_output=True,
        text=True, timeout=120, env={**clean_env(), "COLUMNS": "200", **(env or {})},
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Any]:
    """A daemon with the example plugins whose state dir is ``<tmp>/.orrery`` (the default)."""
    handle = spawn_daemon(tmp_path / ".orrery", "--plugins-dir", str(EXAMPLES), cwd=tmp_path)
    try:
        handle.wait_ready()
        yield handle
    finally:
        if handle.stop() != 0:
            raise AssertionError(handle.log)


def test_token_prints_the_token(running: Any, tmp_path: Path) -> None:
    out = orrery("token", cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.strip() == running.token


def test_token_without_a_state_dir_says_how_to_get_one(tmp_path: Path) -> None:
    out = orrery("token", "--state-dir", str(tmp_path / "none"), cwd=tmp_path)
    assert out.returncode == 2
    assert "orrery daemon" in out.stderr and "Traceback" not in out.stderr


def test_status_json_and_table(running: Any, tmp_path: Path) -> None:
    out = orrery("status", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["url"] == running.url
    assert status["bus_backend"] == "memory"
    assert sorted(status["plugins"]["active"]) == ["greet-counter", "greeter"]
    assert status["sandbox"] == "unknown" or {layer["name"] for layer in status["sandbox"]}
    table = orrery("status", cwd=tmp_path)
    assert table.returncode == 0
    assert status["node_id"] in table.stdout and "greet-counter" in table.stdout


def test_without_a_daemon_client_commands_fail_clearly(tmp_path: Path) -> None:
    out = orrery("status", cwd=tmp_path)
    assert out.returncode == 2
    assert "no daemon is running" in out.stderr and "orrery daemon" in out.stderr


def test_plugins_lifecycle_through_the_daemon(running: Any, tmp_path: Path) -> None:
    out = orrery("plugins", "disable", "greet-counter", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["state"] == "stopped"
    # ls asks the daemon (a local survey would say "resolved").
    ls = orrery("plugins", "ls", "--json", cwd=tmp_path)
    listed = {p["name"]: p for p in json.loads(ls.stdout)}
    assert listed["greet-counter"]["state"] == "stopped"
    local = orrery("plugins", "ls", "--json", "--local", "--no-entry-points", "--plugins-dir",
                   str(EXAMPLES), cwd=tmp_path)
    assert {p["state"] for p in json.loads(local.stdout)} == {"resolved"}
    assert orrery("plugins", "enable", "greet-counter", cwd=tmp_path).returncode == 0
    assert "active" in orrery("plugins", "show", "greet-counter", cwd=tmp_path).stdout
    reload = orrery("plugins", "reload", "greeter", "--json", cwd=tmp_path)
    assert reload.returncode == 0 and json.loads(reload.stdout)["state"] == "active"
    missing = orrery("plugins", "enable", "ghost", cwd=tmp_path)
    assert missing.returncode == 1  # the operation failed: no such plugin
    assert "404" in missing.stderr and "ghost" in missing.stderr


def test_plugins_config_show_and_set(running: Any, tmp_path: Path) -> None:
    shown = orrery("plugins", "config", "greeter", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["greeting"] == "hello"
    changed = orrery("plugins", "config", "greeter", "greeting=moin", "--json", cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["greeting"] == "moin"
    bad = orrery("plugins", "config", "greeter", "greeting=[1]", cwd=tmp_path)
    assert bad.returncode == 2
    assert "plugins.greeter.greeting" in " ".join(bad.stderr.split())


def test_publish_and_tail(running: Any, tmp_path: Path) -> None:
    tail = subprocess.Popen(
        [sys.executable, "-m", "orrery.kernel.cli", "tail", "greet.*", "--json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
    )
    try:
        # The stream is open once the daemon counts it; poll status rather than sleep.
        deadline = time.monotonic() + 30
        while json.loads(orrery("status", "--json", cwd=tmp_path).stdout)["streams"] < 1:
            assert time.monotonic() < deadline and tail.poll() is None
        out = orrery("publish", "other.topic", "1", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        out = orrery("publish", "greet.hello", '{"who": "cli"}', "--key", "k1", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        event_id = out.stdout.strip()
        line = _read_line(tail, timeout=30)
    finally:
        tail.send_signal(signal.SIGINT)
        code = tail.wait(timeout=30)
    event = json.loads(line)
    assert (event["id"], event["type"], event["data"], event["subject"]) == (
        event_id, "greet.hello", {"who": "cli"}, "k1"
    )
    assert code == 0


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout.fileno(), selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no line from tail; got {seen!r}"
        if selector.select(remaining):
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"tail exited: {proc.stderr.read() if proc.stderr else b''!r}"
            seen += chunk
    return seen.split(b"\n", 1)[0].decode()


@pytest.mark.parametrize(
    ("args", "needle"),
    [(("greet.hello", "{nope"), "not valid JSON"), (("greet..x", "1"), "topic")],
)
def test_publish_errors_are_one_clear_line(
    running: Any, tmp_path: Path, args: tuple[str, str], needle: str
) -> None:
    out = orrery("publish", *args, cwd=tmp_path)
    assert out.returncode == 2
    assert needle in out.stderr and "Traceback" not in out.stderr


def test_url_and_token_flags(running: Any, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ok = orrery("status", "--json", "--url", running.url, "--token", running.token, cwd=elsewhere)
    assert ok.returncode == 0, ok.stderr
    wrong = orrery("status", "--url", running.url, "--token", "nope", cwd=elsewhere)
    assert wrong.returncode == 2 and "401" in wrong.stderr
    via_env = orrery("plugins", "ls", "--json", cwd=elsewhere,
                     env={"ORRERY_URL": running.url, "ORRERY_TOKEN": running.token})
    assert via_env.returncode == 0
    assert {p["state"] for p in json.loads(via_env.stdout)} == {"active"}
