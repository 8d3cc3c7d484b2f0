"""The command line: help, and a clear exit 2 when no daemon is running."""

from __future__ import annotations

from pathlib import Path

import pytest
from orrery_workflows.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "ping" in result.output and "stats" in result.output


def test_no_daemon_is_exit_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    for name in ("ORRERY_URL", "ORRERY_TOKEN", "ORRERY_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 2
    assert result.output.startswith("error: no running daemon found")
