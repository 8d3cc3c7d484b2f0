from __future__ import annotations

import sys
import textwrap

import pytest
from orrery.sandbox import PluginTarget, read_declaration


def test_reads_literal_attributes_without_running_the_plugin(tmp_path) -> None:
    path = tmp_path / "greeter.py"
    path.write_text(textwrap.dedent('''
        raise SystemExit("plugin code must not run")
        from orrery.sdk import Plugin

        class Greeter(Plugin):
            name = "greeter"
            requires = {"metrics": ">=0.1"}
            permissions = ["bus.publish:greet.>", "store"]
            sandbox = True
    '''))
    decl = read_declaration(PluginTarget.from_path(path))
    assert decl.class_name == "Greeter"
    assert decl.name == "greeter"
    assert decl.sandbox is True
    assert decl.permissions == ("bus.publish:greet.>", "store")
    assert decl.requires == {"metrics": ">=0.1"}


def test_package_plugin(tmp_path) -> None:
    pkg = tmp_path / "pkgplugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from orrery import sdk\nclass P(sdk.Plugin):\n    sandbox = False\n"
    )
    assert read_declaration(PluginTarget.from_path(pkg)).class_name == "P"


def test_entry_point_ref(tmp_path, monkeypatch) -> None:
    (tmp_path / "epmod.py").write_text(
        "from orrery.sdk import Plugin\nclass Helper: pass\n"
        "class Ep(Plugin):\n    permissions = ('net',)\n"
    )
    decl = read_declaration(PluginTarget.from_ref("epmod:Ep", sys_path=[str(tmp_path)]))
    assert decl.permissions == ("net",)
    assert "epmod" not in sys.modules


def test_computed_permissions_are_refused(tmp_path) -> None:
    path = tmp_path / "computed.py"
    path.write_text(
        "from orrery.sdk import Plugin\nP = ['net']\nclass C(Plugin):\n    permissions = P\n"
    )
    with pytest.raises(ValueError, match="must be a literal"):
        read_declaration(PluginTarget.from_path(path))


def test_needs_exactly_one_plugin(tmp_path) -> None:
    path = tmp_path / "none.py"
    path.write_text("x = 1\n")
    with pytest.raises(ValueError, match="exactly one Plugin subclass"):
        read_declaration(PluginTarget.from_path(path))


def test_an_entry_point_in_a_subpackage_is_read_without_running_its_package(
    tmp_path,
) -> None:
    pkg = tmp_path / "eppkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('the package ran')\n")
    (pkg / "sub" / "__init__.py").write_text("raise RuntimeError('the subpackage ran')\n")
    (pkg / "sub" / "impl.py").write_text(
        "from orrery.sdk import Plugin\nclass Ep(Plugin):\n    name = 'deep'\n    sandbox = True\n"
    )
    decl = read_declaration(PluginTarget.from_ref("eppkg.sub.impl:Ep", sys_path=[str(tmp_path)]))
    assert (decl.name, decl.sandbox) == ("deep", True)
    assert "eppkg" not in sys.modules
