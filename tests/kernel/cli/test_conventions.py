"""CLI conventions on every command: exit codes 0/1/2, one-line errors, placeholders
that read like words, tables within 80 columns; plus request, logs, --state and
reload-stays-failed against a real daemon process."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from orrery.kernel.cli import app
from typer.testing import CliRunner

from .test_client import EXAMPLES, clean_env, orrery, spawn_daemon

TYPE_PLACEHOLDERS = re.compile(r"\b(TEXT|INTEGER|FLOAT|PATH|BOOLEAN)\b")

BROKEN = '''
from orrery.sdk import Plugin, hookimpl


class Broken(Plugin):
    name = "broken"

    @hookimpl
    async def orrery_start(self, ctx):
        raise RuntimeError("cannot start today")
'''


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(getattr(group, "commands", {}).items()):
        yield (*path, name)
        yield from _commands(command, (*path, name))


def test_every_help_reads_like_words_and_fits_80_columns() -> None:
    runner = CliRunner()
    commands = list(_commands(typer.main.get_command(app)))
    assert ("request",) in commands and ("logs",) in commands
    for command in commands:
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
        assert result.exit_code == 0, (command, result.output)
        assert not TYPE_PLACEHOLDERS.search(result.output), (command, result.output)
        assert "╭" not in result.output  # no boxes
        assert max(len(line) for line in result.output.splitlines()) <= 80, command
    usage = runner.invoke(app, ["request", "--help"]).output
    assert "TOPIC" in usage and "JSON" in usage and "--timeout SECONDS" in usage


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("bogus",), "No such command"),
        (("publish",), "Missing argument 'TOPIC'"),
        (("plugins", "ls", "--bogus"), "No such option"),
        (("plugins", "ls", "--state", "sleepy"), "use one of: discovered"),
        (("status",), "no daemon is running"),
        (("request", "a.b", "{nope"), "not valid JSON"),
        (("logs",), "no daemon is running"),
    ],
)
def test_usage_and_connection_errors_exit_2_on_one_line(
    tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    out = orrery(*args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert needle in lines[0]
    assert "Traceback" not in out.stderr and "╭" not in out.stderr


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    # A deep folder, so the source column has to be cut to fit.
    folder = tmp_path / ("a-rather-long-folder-name-" * 3) / "plugins"
    folder.mkdir(parents=True)
    for example in EXAMPLES.glob("*.py"):
        (folder / example.name).write_text(example.read_text())
    (folder / "broken.py").write_text(textwrap.dedent(BROKEN))
    handle = spawn_daemon(tmp_path / ".orrery", "--plugins-dir", str(folder), cwd=tmp_path)
    try:
        handle.wait_ready()
        yield handle
    finally:
        assert handle.stop() == 0, handle.log


def test_tables_fit_80_columns_and_wide_shows_everything(served: Any, tmp_path: Path) -> None:
    narrow = orrery("plugins", "ls", cwd=tmp_path)
    assert narrow.returncode == 0, narrow.stderr
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
    assert "…" in narrow.stdout and "greeter.py" in narrow.stdout  # the end of the path
    wide = orrery("plugins", "ls", "--wide", cwd=tmp_path)
    assert "a-rather-long-folder-name-" * 3 in wide.stdout and "description" in wide.stdout
    status = orrery("status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert max(len(line) for line in status.stdout.splitlines()) <= 80


def test_plugins_ls_filters_by_state(served: Any, tmp_path: Path) -> None:
    failed = orrery("plugins", "ls", "--state", "failed", "--json", cwd=tmp_path)
    assert [p["name"] for p in json.loads(failed.stdout)] == ["broken"]
    both = orrery("plugins", "ls", "--state", "failed", "--state", "active", "--json",
                  cwd=tmp_path)
    assert {p["name"] for p in json.loads(both.stdout)} == {"broken", "greet-counter", "greeter"}


def test_a_reload_that_stays_failed_exits_1(served: Any, tmp_path: Path) -> None:
    out = orrery("plugins", "reload", "broken", cwd=tmp_path)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "cannot start today" in out.stderr
    assert orrery("plugins", "reload", "greeter", cwd=tmp_path).returncode == 0
    assert orrery("plugins", "enable", "broken", cwd=tmp_path).returncode == 1


def test_request_prints_the_reply_and_exits_1_without_one(served: Any, tmp_path: Path) -> None:
    out = orrery("request", "greet.hello", '{"who": "cli"}', cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"text": "hello, cli"}
    full = orrery("request", "greet.hello", '{"who": "cli"}', "--json", cwd=tmp_path)
    assert json.loads(full.stdout)["reply"] == {"text": "hello, cli"}
    none = orrery("request", "nobody.listens", "1", "--timeout", "0.2", cwd=tmp_path)
    assert none.returncode == 1
    assert none.stderr.count("\n") == 1 and "no reply" in none.stderr


def test_plugins_show_names_the_source_of_each_value(served: Any, tmp_path: Path) -> None:
    assert orrery("plugins", "config", "greeter", "greeting=moin", cwd=tmp_path).returncode == 0
    out = orrery("plugins", "show", "greeter", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert re.search(r"greeting\s+\"moin\"\s+runtime", out.stdout), out.stdout
    typo = orrery("plugins", "config", "greeter", "greting=x", cwd=tmp_path)
    assert typo.returncode == 2 and "plugins.greeter.greting" in typo.stderr


def test_logs_shows_and_follows_a_plugins_records(served: Any, tmp_path: Path) -> None:
    out = orrery("logs", "greeter", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "greeter: answering greet.hello with 'hello'" in out.stdout
    follow = subprocess.Popen(
        [sys.executable, "-m", "orrery.kernel.cli", "logs", "greeter", "--follow"],
        cwd=tmp_path, stdout=subprocess.PIPE, env=clean_env(),
    )
    try:
        assert follow.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(follow.stdout.fileno(), selectors.EVENT_READ)
        seen = b""
        configured = False
        while b"'servus'" not in seen:
            if not configured and b"'hello'" in seen:
                # The history is printed: a change now logs a new record, which follows.
                assert orrery("plugins", "config", "greeter", "greeting=servus",
                              cwd=tmp_path).returncode == 0
                configured = True
            assert selector.select(30), seen
            chunk = os.read(follow.stdout.fileno(), 65536)
            assert chunk, seen
            seen += chunk
    finally:
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 0
