"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

PluginWriter = Callable[..., Path]


@pytest.fixture(autouse=True, scope="session")
def _private_user_state(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Daemons record themselves for the CLI under $XDG_STATE_HOME/orrery: keep the
    records of test daemons (and daemon subprocesses, which inherit it) out of ~."""
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))


@pytest.fixture
def plugins_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    return folder


@pytest.fixture
def write_plugin(plugins_dir: Path) -> PluginWriter:
    """Write ``source`` (dedented) as ``<plugins_dir>/<filename>`` and return the path."""

    def write(filename: str, source: str, folder: Path | None = None) -> Path:
        path = (folder or plugins_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    return write


@pytest.fixture
def install_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Make a real importable distribution with ``orrery.plugins`` entry points.

    It is a package plus a ``.dist-info`` folder on a fresh ``sys.path`` entry, which is
    exactly what importlib.metadata finds for a pip-installed distribution.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(
        dist: str, version: str, package: str, source: str, entry_points: dict[str, str]
    ) -> Path:
        pkg = site / package
        pkg.mkdir()
        (pkg / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[orrery.plugins]\n{lines}\n", encoding="utf-8")
        return pkg

    return install
