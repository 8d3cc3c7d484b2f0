"""Read a plugin's class attributes without running its code.

The kernel must know whether a plugin wants the sandbox, and what it may do, before
anything of it runs; importing an untrusted module to read ``sandbox = True`` would run
it in the kernel. This parses the source instead and takes literal values only.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ._launch import PluginTarget

__all__ = ["PluginDeclaration", "read_declaration"]

_ATTRS = ("name", "version", "requires", "optional", "permissions", "sandbox")


@dataclass(frozen=True)
class PluginDeclaration:
    """The literal class attributes of a plugin, as written in its source."""

    class_name: str
    name: str = ""
    version: str = ""
    sandbox: bool = False
    permissions: tuple[str, ...] = ()
    requires: dict[str, str] = field(default_factory=dict)
    optional: dict[str, str] = field(default_factory=dict)
    #: Attributes that are set but not literals (read with ``strict=False`` only).
    computed: tuple[str, ...] = ()
    #: Why the literal values may not be what the class ends up with (a decorator or a
    #: metaclass can change them), or "" when the class is plain.
    opaque: str = ""


def _source_file(target: PluginTarget) -> tuple[str, str | None]:
    """The module file to parse and the class name asked for, if any."""
    if target.path is not None:
        path = target.path
        if os.path.isdir(path):
            path = os.path.join(path, "__init__.py")
        return path, None
    assert target.ref is not None
    module, _, attr = target.ref.partition(":")
    saved = list(sys.path)
    sys.path[:0] = list(target.sys_path)
    try:
        spec = _find_without_importing(module)
    finally:
        sys.path[:] = saved
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"cannot find the source of {module!r} to read {attr!r}")
    return spec.origin, attr.split(".")[-1]


def _find_without_importing(module: str) -> importlib.machinery.ModuleSpec | None:
    """The spec of ``module`` without running any package's ``__init__``: the top-level
    name through the import system (finding it runs nothing), then each submodule in
    its parent's search locations (``importlib.util.find_spec`` would import parents)."""
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])
    for i in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(
            ".".join(parts[: i + 1]), list(spec.submodule_search_locations)
        )
    return spec


def _plugin_aliases(tree: ast.Module) -> set[str]:
    """Names the module binds to ``orrery.sdk.Plugin`` (``from orrery.sdk import Plugin
    as Base``), besides ``Plugin`` itself."""
    names = {"Plugin"}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("orrery"):
            names.update(a.asname for a in node.names if a.name == "Plugin" and a.asname)
    return names


def _is_plugin_base(base: ast.expr, aliases: set[str]) -> bool:
    if isinstance(base, ast.Name):
        return base.id in aliases
    return isinstance(base, ast.Attribute) and base.attr == "Plugin"


def _opaque(cls: ast.ClassDef) -> str:
    if cls.decorator_list:
        return f"class {cls.name} is built by a decorator"
    if any(k.arg == "metaclass" for k in cls.keywords):
        return f"class {cls.name} has a metaclass"
    if cls.keywords:
        return f"class {cls.name} passes keywords to its base class"
    return ""


def read_declaration(target: PluginTarget, *, strict: bool = True) -> PluginDeclaration:
    """Parse the plugin's source and return its literal class attributes.

    Raises `ValueError` when there is not exactly one `Plugin` subclass (or the named
    class is missing) or, when ``strict``, an attribute is not a literal (e.g. computed
    permissions). With ``strict=False`` such attributes are listed in ``computed``
    instead, and ``opaque`` says when a decorator or metaclass may change the class.
    """
    path, wanted = _source_file(target)
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    aliases = _plugin_aliases(tree)
    classes = [
        node for node in tree.body
        if isinstance(node, ast.ClassDef)
        and (node.name == wanted if wanted else any(_is_plugin_base(b, aliases)
                                                    for b in node.bases))
    ]
    if len(classes) != 1:
        found = [c.name for c in classes] or "none"
        raise ValueError(
            f"{path} must define exactly one Plugin subclass{f' named {wanted}' if wanted else ''}"
            f" at module level, found {found}"
        )
    cls = classes[0]
    values: dict[str, Any] = {}
    computed: list[str] = []
    for node in cls.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target_node, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target_node, value = node.target, node.value
        else:
            continue
        if isinstance(target_node, ast.Name) and target_node.id in _ATTRS:
            try:
                values[target_node.id] = ast.literal_eval(value)
            except ValueError as e:
                if not strict:
                    computed.append(target_node.id)
                    continue
                raise ValueError(
                    f"{path}: {cls.name}.{target_node.id} must be a literal value so it can be "
                    f"read without running the plugin"
                ) from e
    return PluginDeclaration(
        class_name=cls.name,
        name=str(values.get("name", "")),
        version=str(values.get("version", "")),
        sandbox=bool(values.get("sandbox", False)),
        permissions=tuple(values.get("permissions", ())),
        requires=dict(values.get("requires", {})),
        optional=dict(values.get("optional", {})),
        computed=tuple(computed),
        opaque=_opaque(cls),
    )
