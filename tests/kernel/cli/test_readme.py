"""Every code block of README.md, run as written: Python blocks execute (the plugin is
written where its first comment says), the TOML block is a valid configuration for
that plugin, and the shell blocks run against a real daemon where that is safe (the
rest are checked to be real commands)."""

from __future__ import annotations

import json
import os
import re
import selectors
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from orrery.kernel import Kernel
from orrery.kernel._config import load_config

from .test_client import DaemonProcess, clean_env, support

README = support.REPO / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
ORRERY = [sys.executable, "-m", "orrery.kernel.cli"]


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def plugin_block() -> tuple[str, str]:
    """(path, source) of the Python block whose first line names the file it is."""
    for body in blocks("python"):
        first = body.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            return first[2:].strip(), body
    raise AssertionError("README has no plugin file block ('# folder/name.py' first)")


def program_blocks() -> list[str]:
    path, _ = plugin_block()
    return [b for b in blocks("python") if not b.startswith(f"# {path}")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path, source = plugin_block()
    target = tmp_path / path
    target.parent.mkdir(parents=True)
    target.write_text(source)
    return tmp_path


def test_the_readme_has_the_blocks_this_test_knows() -> None:
    assert len(program_blocks()) == 1 and len(blocks("toml")) == 1
    assert {lang for lang, _ in FENCE.findall(README.read_text())} == {"python", "sh", "toml"}


def test_the_embedding_program_runs_as_written(project: Path) -> None:
    (program,) = program_blocks()
    out = subprocess.run([sys.executable, "-c", program], cwd=project, capture_output=True,
                         text=True, timeout=120, env=clean_env())
    assert out.returncode == 0, out.stderr
    # Each print's trailing comment is what it prints.
    expected = [line.split("#", 1)[1].strip() for line in program.splitlines()
                if "print(" in line and "#" in line]
    assert out.stdout.splitlines() == expected


async def test_the_configuration_block_configures_the_plugin(project: Path) -> None:
    (toml,) = blocks("toml")
    config = project / "orrery.toml"
    config.write_text(toml)
    load_config(config, env={})  # every section and key is valid
    async with Kernel(plugins_dirs=[project / "plugins-folder"], state_dir=project / "s",
                      config=config, env={}, entry_points=False, watch=False) as k:
        assert k.plugins["greeter"].state == "active", k.plugins["greeter"].error
        assert await k.bus.request("greet.hello", {"who": "x"}) == {"text": "ahoy, x"}


def _commands() -> Iterator[tuple[list[str], str]]:
    for body in blocks("sh"):
        for line in body.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                comment = line.split("  #", 1)[1].strip() if "  #" in line else ""
                yield words, comment


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ORRERY, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=clean_env())


def _first_line(proc: subprocess.Popen[bytes], publish: list[str] | None, cwd: Path) -> str:
    """The first stdout line of a following command (publishing until one arrives: the
    command subscribes at some point after it started)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    seen = b""
    for _ in range(60):
        if publish is not None:
            assert _run(publish, cwd).returncode == 0
        if selector.select(0.5):  # wait for output, bounded
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"exited with {proc.wait()} before printing a line")
            seen += chunk
            if b"\n" in seen:
                return seen.split(b"\n", 1)[0].decode()
    raise AssertionError(f"no complete line; got {seen!r}")


def test_the_shell_blocks_run(project: Path) -> None:
    makefile = (support.REPO / "Makefile").read_text()
    daemon: DaemonProcess | None = None
    ran: list[str] = []
    try:
        for words, comment in _commands():
            if words[0] == "make":
                assert re.search(rf"^{words[1]}:", makefile, re.M), words
                continue
            if words[0] == "$EDITOR":  # a person edits; the hot reload has its own tests
                assert (project / words[1]).is_file()
                continue
            assert words[0] == "orrery", f"unknown command in README: {words}"
            args = [w for w in words[1:] if w != "&"]
            command = args[0] if args[0] not in ("plugins", "plugin") else " ".join(args[:2])
            ran.append(command)
            if command == "daemon":
                # Another port than 7878, so parallel test runs cannot collide.
                log = (project / "daemon.log").open("w")
                proc = subprocess.Popen([*ORRERY, *args, "--port", "0", "--no-entry-points"],
                                        cwd=project, stdout=log, stderr=log, env=clean_env())
                daemon = DaemonProcess(proc, project / ".orrery", project / "daemon.log")
                daemon.wait_ready()
            elif command in ("tail", "logs"):
                follower = subprocess.Popen([*ORRERY, *args], cwd=project,
                                            stdout=subprocess.PIPE, env=clean_env())
                try:
                    publish = ["publish", "greet.hello", '{"who": "tail"}']
                    line = _first_line(follower, publish if command == "tail" else None, project)
                finally:
                    follower.send_signal(signal.SIGINT)
                    follower.wait(timeout=30)
                assert ("greet.hello" if command == "tail" else "answering greet.hello") in line
            elif command == "plugins install":
                # Would pip-install from the network: check that the command exists.
                assert _run([*args[:2], "--help"], project).returncode == 0
            else:
                out = _run(args, project)
                assert out.returncode == 0, out.stderr
                if command == "request":
                    expected = comment.split(":", 1)[1].strip()
                    assert json.loads(out.stdout) == json.loads(expected)
                if command == "plugins ls":
                    assert "greeter" in out.stdout and "active" in out.stdout
    finally:
        if daemon is not None:
            assert daemon.stop() == 0, daemon.log
    assert {"daemon", "plugins ls", "request", "publish", "tail", "logs",
            "plugin new"} <= set(ran)
    assert (project / "orrery-weather" / "pyproject.toml").is_file()

