"""A rescan makes packages importable that an editable install put on a new .pth file."""

from __future__ import annotations

import importlib
import os
import site
import sys
from pathlib import Path

import pytest
from orrery.kernel.plugins import refresh_site_paths


@pytest.fixture
def site_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(folder)])
    monkeypatch.setattr(site, "ENABLE_USER_SITE", False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return folder


def _package(root: Path, name: str) -> Path:
    src = root / f"src-{name}"
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text("VALUE = 42\n")
    return src


def test_a_new_pth_file_makes_its_package_importable(site_dir: Path, tmp_path: Path) -> None:
    src = _package(tmp_path, "late_editable_pkg")
    (site_dir / "_late_editable_pkg.pth").write_text(f"{src}\n")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("late_editable_pkg")
    assert refresh_site_paths() == [str(src)]
    try:
        assert importlib.import_module("late_editable_pkg").VALUE == 42
    finally:
        sys.modules.pop("late_editable_pkg", None)
    assert refresh_site_paths() == []  # applied once


def test_import_lines_of_a_new_pth_file_run_once(site_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    line = f"import pathlib; pathlib.Path({str(marker)!r}).open('a').write('x')\n"
    (site_dir / "finder.pth").write_text(line)
    refresh_site_paths()
    refresh_site_paths()
    assert marker.read_text() == "x"


def test_pth_files_older_than_the_process_are_left_alone(site_dir: Path, tmp_path: Path) -> None:
    src = _package(tmp_path, "old_pkg")
    old = site_dir / "old.pth"
    old.write_text(f"{src}\n")
    os.utime(old, (1_000_000, 1_000_000))  # site read it at start-up (or chose not to)
    assert refresh_site_paths() == []
    assert str(src) not in sys.path
