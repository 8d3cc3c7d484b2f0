"""Import plugin-folder code straight from source, never from cached bytecode.

Each load gets a new module name under ``_orrery_folder``, so a reload never sees the
previous version's module objects, and every module is compiled from the current source
text: a stale ``.pyc`` (same size, same mtime second) cannot be picked up.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import sys
import types
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ROOT_PACKAGE", "forget_modules", "import_fresh"]

ROOT_PACKAGE = "_orrery_folder"
_load_counter = itertools.count(1)


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """A source loader that always compiles from the file's current text."""

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        return compile(source, path, "exec", dont_inherit=True)


class _FolderPluginFinder(importlib.abc.MetaPathFinder):
    """Finds submodules of folder-plugin packages, with the source-only loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(ROOT_PACKAGE + ".") or not path:
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in path:
            package_init = Path(entry, leaf, "__init__.py")
            if package_init.is_file():
                return _spec(fullname, package_init, package=True)
            module_file = Path(entry, leaf + ".py")
            if module_file.is_file():
                return _spec(fullname, module_file, package=False)
        return None


def _spec(fullname: str, file: Path, *, package: bool) -> importlib.machinery.ModuleSpec:
    loader = _SourceOnlyLoader(fullname, str(file))
    spec = importlib.util.spec_from_file_location(
        fullname,
        file,
        loader=loader,
        submodule_search_locations=[str(file.parent)] if package else None,
    )
    assert spec is not None  # a file location with an explicit loader always gives a spec
    return spec


def _ensure_root() -> None:
    if ROOT_PACKAGE not in sys.modules:
        root = types.ModuleType(ROOT_PACKAGE, "Modules of plugins loaded from plugin folders.")
        root.__path__ = []
        sys.modules[ROOT_PACKAGE] = root
    if not any(isinstance(f, _FolderPluginFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _FolderPluginFinder())


def import_fresh(path: Path) -> types.ModuleType:
    """Import a plugin file or package directory under a new, unique module name."""
    _ensure_root()
    stem = path.stem if path.is_file() else path.name
    safe = "".join(c if c.isalnum() else "_" for c in stem)
    fullname = f"{ROOT_PACKAGE}.{safe}_{next(_load_counter)}"
    if path.is_dir():
        spec = _spec(fullname, path / "__init__.py", package=True)
    else:
        spec = _spec(fullname, path, package=False)
    module = importlib.util.module_from_spec(spec)
    sys.modules[fullname] = module
    try:
        assert spec.loader is not None
        spec.loader.exec_module(module)
    except BaseException:
        forget_modules(fullname)
        raise
    return module


def forget_modules(fullname: str) -> list[str]:
    """Drop ``fullname`` and its submodules from ``sys.modules``; returns what was dropped."""
    gone = [m for m in sys.modules if m == fullname or m.startswith(fullname + ".")]
    for name in gone:
        del sys.modules[name]
    return gone
