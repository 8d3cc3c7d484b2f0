"""Discovery: plugin classes from the ``orrery.plugins`` entry points and plugin folders."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import importlib_metadata

from orrery.sdk import Plugin

from ..errors import PluginError
from ._fresh_import import forget_modules, import_fresh
from ._validation import PluginSpec, validate_plugin_class

__all__ = [
    "ENTRY_POINT_GROUP",
    "FOLDER_VERSION",
    "PluginCandidate",
    "discover_entry_points",
    "discover_folder",
    "folder_entries",
    "load_folder_plugin",
]

ENTRY_POINT_GROUP = "orrery.plugins"
FOLDER_VERSION = "0.0.0+folder"
log = logging.getLogger("orrery.kernel.discovery")


@dataclass
class PluginCandidate:
    """A discovered plugin: a validated spec, or the error that prevents using it."""

    name: str
    source: str
    kind: str  # "entrypoint" or "folder"
    spec: PluginSpec | None = None
    error: str | None = None
    path: Path | None = None
    module_name: str | None = None
    entry_point: str | None = None  # "module:attr" for entry-point plugins
    distribution: str | None = None

    @property
    def version(self) -> str:
        if self.spec is not None:
            return self.spec.version
        return FOLDER_VERSION if self.kind == "folder" else "0.0.0"

    def unload(self) -> None:
        """Forget the modules this candidate imported (folder plugins only)."""
        if self.module_name is not None:
            forget_modules(self.module_name)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    if isinstance(exc, PluginError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def discover_entry_points() -> list[PluginCandidate]:
    """Load every entry point of the ``orrery.plugins`` group."""
    out: list[PluginCandidate] = []
    for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        dist_name = dist.name if dist is not None else "unknown distribution"
        dist_version = dist.version if dist is not None else "0.0.0"
        source = f"{dist_name} {dist_version} (entry point {ep.name} = {ep.value})"
        candidate = PluginCandidate(
            name=ep.name,
            source=source,
            kind="entrypoint",
            entry_point=ep.value,
            distribution=dist_name,
        )
        try:
            obj: Any = ep.load()
            candidate.spec = validate_plugin_class(
                obj, default_name=ep.name, default_version=dist_version, where=f"entry point {ep.name}"
            )
            candidate.name = candidate.spec.name
        except Exception as e:
            candidate.error = f"cannot load entry point {ep.name} = {ep.value!r}: {_describe(e)}"
            log.debug("entry point %s failed:\n%s", ep.name, traceback.format_exc())
        out.append(candidate)
    return out


def folder_entries(folder: Path) -> list[Path]:
    """Plugin files (``*.py``) and packages (dirs with ``__init__.py``) in ``folder``."""
    if not folder.is_dir():
        return []
    entries = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.is_file() and path.suffix == ".py":
            entries.append(path)
        elif path.is_dir() and (path / "__init__.py").is_file():
            entries.append(path)
    return entries


def _default_name(path: Path) -> str:
    stem = path.stem if path.is_file() else path.name
    return stem.lower().replace("_", "-")


def load_folder_plugin(path: Path) -> PluginCandidate:
    """Import one plugin file or package freshly and validate its single Plugin class."""
    default = _default_name(path)
    candidate = PluginCandidate(name=default, source=str(path), kind="folder", path=path)
    try:
        module = import_fresh(path)
    except Exception as e:
        candidate.error = f"cannot import {path}: {_describe(e)}"
        log.debug("import of %s failed:\n%s", path, traceback.format_exc())
        return candidate
    candidate.module_name = module.__name__
    classes = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Plugin)
        and obj is not Plugin
        and obj.__module__.startswith(module.__name__)
    ]
    if len(classes) != 1:
        found = ", ".join(c.__qualname__ for c in classes) or "none"
        candidate.error = (
            f"{path} must define exactly one orrery.sdk.Plugin subclass (found: {found}); "
            f"keep one plugin per file or package"
        )
        candidate.unload()
        return candidate
    try:
        candidate.spec = validate_plugin_class(
            classes[0], default_name=default, default_version=FOLDER_VERSION, where=str(path)
        )
        candidate.name = candidate.spec.name
    except PluginError as e:
        candidate.error = str(e)
        candidate.unload()
    return candidate


def discover_folder(folder: Path) -> list[PluginCandidate]:
    """Load every plugin file and package in ``folder``."""
    return [load_folder_plugin(path) for path in folder_entries(folder)]
