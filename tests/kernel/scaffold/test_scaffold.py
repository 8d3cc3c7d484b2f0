"""``orrery plugin new``: the generated project installs and passes its own tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from orrery.kernel.scaffold import ScaffoldError, create_plugin_project
from orrery.sdk import OrreryError
from orrery.sdk.client import DaemonClient, read_daemon_file

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "orrery-hello"


def _install_and_test(python: Path, project: Path) -> subprocess.CompletedProcess[str]:
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(project),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project / "tests")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "ORRERY_"))}
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    return env


def _orrery(
    python: Path, *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "orrery.kernel.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def _wait_ready(proc: subprocess.Popen[bytes], state: Path, log: Path) -> DaemonClient:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}:\n{log.read_text()}")
        address = read_daemon_file(state)
        if address is not None and address.pid == proc.pid:
            client = DaemonClient(address.url, (state / "token").read_text().strip(), 5.0)
            try:
                if client.call("GET", "/v1/ready")["ready"]:
                    return client
            except OrreryError:
                pass
        time.sleep(0.1)  # polling a readiness probe, not synchronisation
    raise AssertionError(f"daemon not ready:\n{log.read_text()}")


def _names(client: DaemonClient) -> dict[str, str]:
    return {p["name"]: p["state"] for p in client.call("GET", "/v1/plugins")}


@pytest.mark.slow
def test_a_new_plugin_installs_editable_is_rescanned_live_and_passes_its_tests(
    plugin_env: Path, tmp_path: Path
) -> None:
    project = create_plugin_project("weather-desk", tmp_path)
    package = project / "src" / "orrery_weather_desk"
    for module in ("_plugin", "_config", "_service", "_core", "_api", "cli", "errors"):
        assert (package / f"{module}.py").is_file()
    assert (project / "docs" / "weather-desk.md").is_file()
    env, state, log = _env(tmp_path), tmp_path / "state", tmp_path / "daemon.log"
    with log.open("ab") as out:
        daemon = subprocess.Popen(
            [
                str(plugin_env),
                "-m",
                "orrery.kernel.cli",
                "daemon",
                "--port",
                "0",
                "--state-dir",
                str(state),
            ],
            stdout=out,
            stderr=out,
            env=env,
            cwd=tmp_path,
        )
    try:
        client = _wait_ready(daemon, state, log)
        assert "weather-desk" not in _names(client)
        installed = subprocess.run(
            [str(plugin_env), "-m", "pip", "install", "--quiet", "-e", str(project)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert installed.returncode == 0, installed.stderr[-3000:]
        # Without the .pth refresh this is "failed: ... ModuleNotFoundError" until restart.
        rescan = _orrery(
            plugin_env, "plugins", "rescan", "--state-dir", str(state), cwd=tmp_path, env=env
        )
        assert rescan.returncode == 0, rescan.stdout + rescan.stderr
        assert _names(client)["weather-desk"] == "active", log.read_text()[-3000:]
        answer = client.call("POST", "/v1/plugins/weather-desk/ping", {"who": "ada"})
        assert answer["reply"] == "pong, ada"
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        ping = _orrery(plugin_env, "weather-desk", "ping", "grace", cwd=elsewhere, env=env)
        assert (ping.returncode, ping.stdout) == (0, "pong, grace (ping 2)\n"), ping.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    tests = subprocess.run(
        [str(plugin_env), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "10 passed" in tests.stdout


@pytest.mark.slow
def test_the_example_package_installs_and_passes_its_tests(
    plugin_env: Path, tmp_path: Path
) -> None:
    result = _install_and_test(plugin_env, EXAMPLE)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout


@pytest.mark.parametrize("name", ["Weather", "9lives", "with space", ""])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError, match="not a valid plugin name"):
        create_plugin_project(name, tmp_path)


def test_an_existing_directory_is_never_overwritten(tmp_path: Path) -> None:
    create_plugin_project("twice", tmp_path)
    with pytest.raises(ScaffoldError, match="already exists"):
        create_plugin_project("twice", tmp_path)


def test_orrery_plugin_new_writes_the_project_and_says_what_next(tmp_path: Path) -> None:
    from orrery.kernel.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["plugin", "new", "pdf_ingest", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "orrery-pdf_ingest" / "src" / "orrery_pdf_ingest" / "_core.py").is_file()
    assert "pip install -e" in result.output and "orrery plugins rescan" in result.output


@pytest.mark.slow
def test_a_generated_project_passes_ruff_and_its_tests_without_installing(
    tmp_path: Path,
) -> None:
    # The quick guard of the templates: the slow test above installs one for real.
    import sys

    project = create_plugin_project("pdf_ingest", tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "ORRERY_"))}
    env["PYTHONPATH"] = str(project / "src")
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if "No module named ruff" in lint.stderr:
        pytest.skip("ruff is not installed")
    assert lint.returncode == 0, lint.stdout
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "10 passed" in tests.stdout
