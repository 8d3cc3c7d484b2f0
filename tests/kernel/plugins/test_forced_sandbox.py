"""A plugin that is, or may be, sandboxed is never imported in the kernel process.

Each plugin file carries a canary at its top level: it sets an environment variable and
appends its process id to a file. After the kernel has looked at the file, the
variable must be unset in the kernel and the kernel's pid absent from the file: the
code ran in a worker or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CANARY = """
import os
from pathlib import Path
os.environ["ORRERY_TEST_CANARY"] = "ran"
try:
    with Path({path!r}).open("a") as f:
        f.write(f"{{os.getpid()}}\\n")
except OSError:
    pass  # the sandbox may not let it write there
"""

ANSWERS = """
    permissions = ["bus.subscribe:{topic}.>"]

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.bus.subscribe("{topic}.pid", lambda e: os.getpid())
"""

CASES = {
    # A computed name, declaring sandbox = True.
    "computed_name": """
from orrery.sdk import Plugin, hookimpl
PREFIX = "comp"
class C(Plugin):
    name = PREFIX + "uted"
    sandbox = True
""",
    # A computed sandbox flag.
    "computed_flag": """
from orrery.sdk import Plugin, hookimpl
class F(Plugin):
    name = "flagged"
    sandbox = bool(1)
""",
    # A class built by a decorator, forced by configuration.
    "decorated": """
from orrery.sdk import Plugin, hookimpl
def tweak(cls):
    cls.sandbox = False
    return cls
@tweak
class D(Plugin):
    name = "decorated"
""",
    # A metaclass that could change anything.
    "meta": """
from orrery.sdk import Plugin, hookimpl
class Meta(type):
    pass
class M(Plugin, metaclass=Meta):
    name = "meta"
    sandbox = True
""",
    # A class made by calling type(): nothing the kernel can read, but it sets sandbox.
    "built": """
from orrery.sdk import Plugin
Built = type("Built", (Plugin,), {"name": "built", "sandbox": True})
""",
}


@pytest.fixture(autouse=True)
def no_canary() -> None:
    os.environ.pop("ORRERY_TEST_CANARY", None)


def write_case(write_plugin, tmp_path: Path, filename: str, body: str) -> Path:
    canary = tmp_path / "canary.txt"
    return write_plugin(filename, CANARY.format(path=str(canary)) + body)


def assert_never_ran_here(tmp_path: Path) -> None:
    assert "ORRERY_TEST_CANARY" not in os.environ
    canary = tmp_path / "canary.txt"
    pids = canary.read_text().split() if canary.exists() else []
    assert str(os.getpid()) not in pids


@pytest.mark.parametrize("case", sorted(CASES))
async def test_an_unreadable_possibly_sandboxed_plugin_fails_without_running(
    make_kernel, write_plugin, tmp_path: Path, case: str
) -> None:
    write_case(write_plugin, tmp_path, f"{case}.py", CASES[case])
    config = {"plugins": {"decorated": {"sandbox": True}}}
    async with make_kernel(config=config) as k:
        info = k.plugins[case.replace("_", "-")]
        assert info.state == "failed"
        assert "cannot be read without running it" in (info.error or "")
        assert "literal" in (info.error or "")
    assert_never_ran_here(tmp_path)


async def test_forcing_by_config_covers_a_plugin_whose_name_cannot_be_read(
    make_kernel, write_plugin, tmp_path: Path
) -> None:
    # No sandbox in the file at all: it could still be the plugin config forces.
    write_case(
        write_plugin,
        tmp_path,
        "anything.py",
        'from orrery.sdk import Plugin\nclass A(Plugin):\n    name = "tar" + "get"\n',
    )
    async with make_kernel(config={"plugins": {"target": {"sandbox": True}}}) as k:
        info = k.plugins["anything"]
        assert info.state == "failed"
        assert "[plugins.target]" in (info.error or "")
        assert 'literal name = "..."' in (info.error or "")
    assert_never_ran_here(tmp_path)


async def test_plugin_base_under_another_name_runs_in_the_worker(
    make_kernel, write_plugin, tmp_path: Path
) -> None:
    write_case(
        write_plugin,
        tmp_path,
        "aliased.py",
        "from orrery.sdk import Plugin as Base, hookimpl\n"
        'class A(Base):\n    name = "aliased"\n    sandbox = True\n'
        + ANSWERS.format(topic="aliased"),
    )
    async with make_kernel() as k:
        info = k.plugins["aliased"]
        assert (info.state, info.sandbox) == ("active", True), info.error
        assert await k.bus.request("aliased.pid", None) != os.getpid()
    assert_never_ran_here(tmp_path)


async def test_forcing_applies_whatever_file_the_plugin_lives_in(
    make_kernel, write_plugin, tmp_path: Path
) -> None:
    write_case(
        write_plugin,
        tmp_path,
        "misc_name.py",
        'from orrery.sdk import Plugin, hookimpl\nclass A(Plugin):\n    name = "target"\n'
        + ANSWERS.format(topic="target"),
    )
    async with make_kernel(config={"plugins": {"target": {"sandbox": True}}}) as k:
        info = k.plugins["target"]
        assert (info.state, info.sandbox) == ("active", True), info.error
        assert await k.bus.request("target.pid", None) != os.getpid()
    assert_never_ran_here(tmp_path)


async def test_an_ordinary_plugin_with_computed_attributes_still_runs_in_process(
    make_kernel, write_plugin, tmp_path: Path
) -> None:
    write_case(
        write_plugin,
        tmp_path,
        "plain.py",
        'from orrery.sdk import Plugin\nVERSION = "1.2"\n'
        'class P(Plugin):\n    name = "plain"\n    version = VERSION\n',
    )
    async with make_kernel() as k:
        assert (k.plugins["plain"].state, k.plugins["plain"].version) == ("active", "1.2")
    assert os.environ.get("ORRERY_TEST_CANARY") == "ran"  # the canary works
