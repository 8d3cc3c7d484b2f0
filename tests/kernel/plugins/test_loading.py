import sys
from pathlib import Path

import pytest
from orrery.kernel.plugins._loading import (
    discover_entry_points,
    discover_folder,
    load_folder_plugin,
)

GREETER = """
from pydantic import BaseModel
from orrery.sdk import Plugin, hookimpl

class Settings(BaseModel):
    greeting: str = "hello"

class Greeter(Plugin):
    requires = {}
    Config = Settings

    @hookimpl
    async def orrery_start(self, ctx):
        pass
"""


def test_folder_file_plugin_gets_default_name_and_version(write_plugin, plugins_dir: Path) -> None:
    write_plugin("my_greeter.py", GREETER)
    [candidate] = discover_folder(plugins_dir)
    assert candidate.error is None
    assert candidate.name == "my-greeter"
    assert candidate.version == "0.0.0+folder"
    assert candidate.spec is not None and candidate.spec.config_model is not None
    assert candidate.source == str(plugins_dir / "my_greeter.py")


def test_package_plugin_can_import_its_own_submodules(write_plugin, plugins_dir: Path) -> None:
    write_plugin("pkg/helpers.py", "ANSWER = 42\n")
    write_plugin(
        "pkg/__init__.py",
        """
        from orrery.sdk import Plugin
        from .helpers import ANSWER

        class Pkg(Plugin):
            name = "packaged"
            version = "1.2.3"
            answer = ANSWER
        """,
    )
    [candidate] = discover_folder(plugins_dir)
    assert candidate.error is None, candidate.error
    assert candidate.spec is not None
    assert candidate.spec.plugin_class.answer == 42  # type: ignore[attr-defined]
    assert (candidate.name, candidate.version) == ("packaged", "1.2.3")


def test_private_and_non_python_files_are_ignored(write_plugin, plugins_dir: Path) -> None:
    write_plugin("_helper.py", "raise RuntimeError('never imported')\n")
    write_plugin("notes.txt", "hello\n")
    write_plugin(".hidden.py", "raise RuntimeError('never imported')\n")
    assert discover_folder(plugins_dir) == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("import does_not_exist_anywhere\n", "ModuleNotFoundError"),
        ("raise RuntimeError('boom at import')\n", "boom at import"),
        ("X = 1\n", "exactly one orrery.sdk.Plugin subclass (found: none)"),
        (
            "from orrery.sdk import Plugin\nclass A(Plugin): pass\nclass B(Plugin): pass\n",
            "found: A, B",
        ),
    ],
)
def test_broken_plugin_files_fail_with_a_reason(write_plugin, source: str, message: str) -> None:
    path = write_plugin("broken.py", source)
    candidate = load_folder_plugin(path)
    assert candidate.spec is None
    assert candidate.error is not None and message in candidate.error
    assert str(path) in candidate.error
    assert not [m for m in sys.modules if m.startswith("_orrery_folder.broken_")]


def test_a_fresh_import_sees_same_size_edits_within_one_second(
    write_plugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bytecode writing on: a stale .pyc with the same size and mtime second would be
    # reused by the normal import system.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    template = "from orrery.sdk import Plugin\nclass P(Plugin):\n    version = '{}.0.0'\n"
    path = write_plugin("edit.py", template.format(1))
    first = load_folder_plugin(path)
    stat = path.stat()
    path.write_text(template.format(2))
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = load_folder_plugin(path)
    assert (first.version, second.version) == ("1.0.0", "2.0.0")
    assert first.module_name != second.module_name


def test_unload_forgets_the_modules(write_plugin) -> None:
    path = write_plugin("gone.py", GREETER)
    candidate = load_folder_plugin(path)
    assert candidate.module_name in sys.modules
    candidate.unload()
    assert candidate.module_name not in sys.modules


def test_entry_point_plugins_take_version_from_their_distribution(install_distribution) -> None:
    install_distribution(
        "orrery-hello",
        "1.4.0",
        "orrery_hello",
        "from orrery.sdk import Plugin\nclass Hello(Plugin):\n    pass\n",
        {"hello": "orrery_hello:Hello"},
    )
    found = {c.name: c for c in discover_entry_points()}
    candidate = found["hello"]
    assert candidate.error is None and candidate.version == "1.4.0"
    assert candidate.kind == "entrypoint" and "orrery-hello 1.4.0" in candidate.source


def test_broken_entry_points_fail_without_stopping_discovery(install_distribution) -> None:
    install_distribution(
        "orrery-bad",
        "0.1.0",
        "orrery_bad",
        "from orrery.sdk import Plugin\nclass Good(Plugin):\n    name = 'good'\nNOT_A_PLUGIN = 3\n",
        {
            "good": "orrery_bad:Good",
            "missing": "orrery_bad:Nope",
            "wrong": "orrery_bad:NOT_A_PLUGIN",
        },
    )
    found = {c.name: c for c in discover_entry_points()}
    assert found["good"].error is None
    assert "cannot load entry point missing" in (found["missing"].error or "")
    assert "not a subclass of orrery.sdk.Plugin" in (found["wrong"].error or "")
