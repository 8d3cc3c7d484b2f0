"""The ``orrery`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "plugins"


def orrery(*args: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orrery.kernel.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30.0) -> str:
    """Read the process's stderr until it contains ``marker``.

    Raw reads on the descriptor: a buffered readline could hold the marker line in
    Python's buffer while select() waits for bytes that never come.
    """
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{marker!r} never appeared; output so far:\n{seen}")
        if selector.select(remaining):
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"exited before {marker!r}; output:\n{seen}")
            seen += chunk.decode()
    return seen


def read_all(proc: subprocess.Popen[str]) -> str:
    """The rest of stderr, raw, once the process exits."""
    assert proc.stderr is not None
    proc.wait(timeout=30)
    return os.read(proc.stderr.fileno(), 1 << 20).decode()


def test_run_starts_plugins_logs_them_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orrery.kernel.cli",
            "run",
            "--plugins-dir",
            str(EXAMPLES),
            "--state-dir",
            str(tmp_path / "state"),
            "--no-entry-points",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        startup = read_until(proc, "running; press Ctrl-C")
        assert "started greeter" in startup and "started greet-counter" in startup
        assert "2 active" in startup
        proc.send_signal(signal.SIGINT)
        rest = read_all(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "stopped greet-counter" in rest and "kernel" in rest and "stopped" in rest
    assert "Traceback" not in rest


def test_sigterm_also_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "orrery.kernel.cli",
            "run",
            "--state-dir",
            str(tmp_path),
            "--no-entry-points",
            "--log-format",
            "json",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        startup = read_until(proc, "running")
        assert all(json.loads(line)["logger"] for line in startup.splitlines())
        proc.send_signal(signal.SIGTERM)
        read_all(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


def test_plugins_ls_json_lists_every_plugin_without_starting_any(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "broken.py").write_text("import nope_not_here\n")
    out = orrery(
        "plugins",
        "ls",
        "--json",
        "--no-entry-points",
        "--plugins-dir",
        str(EXAMPLES),
        "--plugins-dir",
        str(tmp_path / "plugins"),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    listed = {p["name"]: p for p in json.loads(out.stdout)}
    assert set(listed) == {"greeter", "greet-counter", "broken"}
    assert listed["greeter"]["state"] == "resolved"
    assert listed["broken"]["state"] == "failed"
    assert "nope_not_here" in listed["broken"]["error"]
    for entry in listed.values():
        assert {"name", "version", "state", "source", "error"} <= set(entry)


def test_plugins_ls_table(tmp_path: Path) -> None:
    out = orrery(
        "plugins",
        "ls",
        "--no-entry-points",
        "--plugins-dir",
        str(EXAMPLES),
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0
    assert "greet-counter" in out.stdout and "resolved" in out.stdout


@pytest.mark.parametrize(
    ("toml", "message"),
    [('[bus]\nbackend = "pigeon"\n', "bus.backend"), ("[bus\n", "not valid TOML")],
)
def test_bad_config_is_one_clear_line_not_a_traceback(
    tmp_path: Path, toml: str, message: str
) -> None:
    config = tmp_path / "orrery.toml"
    config.write_text(toml)
    out = orrery("run", "--config", str(config), "--state-dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_plugin_new_creates_a_project_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = orrery("plugin", "new", "weather", "--dir", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    project = tmp_path / "orrery-weather"
    assert (project / "pyproject.toml").is_file()
    assert 'weather = "orrery_weather:WeatherPlugin"' in (project / "pyproject.toml").read_text()
    again = orrery("plugin", "new", "weather", "--dir", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def _site_with_cli_extensions(site: Path) -> None:
    (site / "demo_cli").mkdir(parents=True)
    (site / "demo_cli" / "__init__.py").write_text(
        "import typer\n"
        "app = typer.Typer()\n"
        "@app.command()\n"
        "def greet(name: str) -> None:\n"
        "    print(f'hi {name}')\n"
        "@app.command()\n"
        "def other() -> None:\n"
        "    pass\n"
        "NOT_AN_APP = 3\n"
    )
    info = site / "demo_cli-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-cli\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[orrery.cli]\n"
        "demo = demo_cli:app\n"
        "broken = demo_cli_missing:app\n"
        "wrong = demo_cli:NOT_AN_APP\n"
        "status = demo_cli:app\n"
    )


def test_plugins_can_add_cli_commands_and_broken_ones_are_skipped(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _site_with_cli_extensions(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = orrery("demo", "greet", "ada", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hi ada"
    assert "CLI extension 'broken'" in out.stderr and "failed to load" in out.stderr
    assert "'wrong'" in out.stderr and "not a typer.Typer" in out.stderr
    assert "'status'" in out.stderr and "built-in command" in out.stderr


def test_error_messages_keep_their_square_brackets(tmp_path: Path) -> None:
    out = orrery("plugin", "new", "[weather]", cwd=tmp_path)
    assert out.returncode == 2
    assert "'[weather]' is not a valid plugin name" in out.stderr
