"""``orrery plugin new``: the generated project installs and passes its own tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from orrery.kernel.scaffold import ScaffoldError, create_plugin_project

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


@pytest.mark.slow
def test_new_project_installs_and_passes_its_tests(plugin_env: Path, tmp_path: Path) -> None:
    project = create_plugin_project("weather-desk", tmp_path)
    assert (project / "src" / "orrery_weather_desk" / "plugin.py").is_file()
    result = _install_and_test(plugin_env, project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
    listing = subprocess.run(
        [str(plugin_env), "-m", "orrery.kernel.cli", "plugins", "ls", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert '"name": "weather-desk"' in listing.stdout


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
