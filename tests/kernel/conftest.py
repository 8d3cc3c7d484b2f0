"""Kernel fixtures: a real kernel in a temporary state directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from orrery.kernel import Kernel

KernelFactory = Callable[..., Any]


@pytest.fixture
def make_kernel(tmp_path: Path, plugins_dir: Path) -> KernelFactory:
    """``async with make_kernel(config={...}) as k`` — a kernel over ``plugins_dir``."""

    @asynccontextmanager
    async def factory(**kwargs: Any) -> AsyncIterator[Kernel]:
        kwargs.setdefault("plugins_dirs", [plugins_dir])
        kwargs.setdefault("state_dir", tmp_path / "state")
        kwargs.setdefault("entry_points", False)
        kwargs.setdefault("env", {})
        kwargs.setdefault("watch", False)  # tests that edit files reload explicitly
        async with Kernel(**kwargs) as kernel:
            yield kernel

    return factory


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    """A file plugins under test append lifecycle lines to."""
    return tmp_path / "journal.txt"


@pytest.fixture
def recording_plugin(write_plugin: Callable[..., Path], journal_file: Path) -> Callable[..., Path]:
    """Write a plugin that records start/stop lines into ``journal_file``."""

    def write(name: str, *, requires: dict[str, str] | None = None, start_body: str = "") -> Path:
        body = "\n".join("        " + line for line in start_body.strip().splitlines())
        return write_plugin(
            f"{name.replace('-', '_')}.py",
            f"""
from pathlib import Path
from orrery.sdk import Plugin, hookimpl

LOG = Path({str(journal_file)!r})

class P(Plugin):
    name = {name!r}
    requires = {requires or {}!r}

    @hookimpl
    async def orrery_start(self, ctx):
        with LOG.open("a") as f:
            f.write("start {name}\\n")
{body or "        pass"}

    @hookimpl
    async def orrery_stop(self, ctx):
        with LOG.open("a") as f:
            f.write("stop {name}\\n")
""",
        )

    return write


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway virtualenv that sees everything installed in this one.

    pip installs into it, so tests can install, upgrade and uninstall real distributions
    without touching the environment the suite runs in. Returns its python executable.
    """
    import site
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("plugin-env")
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # addsitedir also runs the parent's .pth files (the editable install of orrery).
    parents = "; ".join(f"site.addsitedir({p!r})" for p in site.getsitepackages())
    Path(purelib, "_parent_env.pth").write_text(f"import site; {parents}\n")
    return python
