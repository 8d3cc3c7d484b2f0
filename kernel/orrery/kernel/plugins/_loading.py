"""Discovery: plugin classes from the ``orrery.plugins`` entry points and plugin folders."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import importlib_metadata
from orrery.kernel.errors import PluginError
from orrery.sdk import Plugin

from ._admission import NO_FORCING, SandboxPolicy, admit, folder_sources
from ._fresh_import import forget_modules, import_fresh
from ._import_guard import ExitDuringImport, import_guarded
from ._site import refresh_site_paths
from ._validation import PluginSpec, validate_plugin_class, validate_sandboxed

__all__ = [
    "ENTRY_POINT_GROUP",
    "FOLDER_VERSION",
    "PluginCandidate",
    "SandboxPolicy",
    "class_candidate",
    "discover_entry_points",
    "discover_folder",
    "distribution_version",
    "entry_points",
    "folder_entries",
    "forget_entry_point_modules",
    "load_entry_point",
    "load_folder_plugin",
]

ENTRY_POINT_GROUP = "orrery.plugins"

FOLDER_VERSION = "0.0.0+folder"
#: Seconds an import may take unless configured (``[kernel] import_timeout``).
IMPORT_TIMEOUT = 30.0
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
    distribution_version: str | None = None

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
    if isinstance(exc, ExitDuringImport):
        return (
            f"it called {exc.call} while being imported, which would end the kernel; a "
            f"plugin module must not end the process"
        )
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}) while being imported"
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    if isinstance(exc, PluginError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def entry_points() -> list[importlib_metadata.EntryPoint]:
    """The ``orrery.plugins`` entry points installed now (nothing imported)."""
    # Also makes editable installs done since start-up importable (their .pth files).
    refresh_site_paths()
    return list(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP))


def distribution_version(ep: importlib_metadata.EntryPoint) -> str:
    return ep.dist.version if ep.dist is not None else "0.0.0"


def load_entry_point(
    ep: importlib_metadata.EntryPoint,
    forced: SandboxPolicy = NO_FORCING,
    *,
    import_timeout: float = IMPORT_TIMEOUT,
) -> PluginCandidate:
    """Import one entry point and validate the Plugin class it names (or, for a
    sandboxed plugin, read its declaration without importing it)."""
    from orrery.sandbox import PluginTarget

    dist = ep.dist
    dist_name = dist.name if dist is not None else "unknown distribution"
    dist_version = distribution_version(ep)
    candidate = PluginCandidate(
        name=ep.name,
        source=f"{dist_name} {dist_version} (entry point {ep.name} = {ep.value})",
        kind="entrypoint",
        entry_point=ep.value,
        distribution=dist_name,
        distribution_version=dist_version,
    )
    root = str(dist.locate_file("")) if dist is not None else ""
    target = PluginTarget.from_ref(ep.value, sys_path=[root] if root else [])
    admission = admit(target, ep.name, forced, describe=_describe)
    if admission.error is not None:
        candidate.error = admission.error
        return candidate
    if admission.sandboxed:
        return _sandboxed_candidate(candidate, admission.declaration, target, dist_version)
    try:
        obj: Any = import_guarded(ep.load, timeout=import_timeout, what=f"entry point {ep.name}")
        candidate.spec = validate_plugin_class(
            obj, default_name=ep.name, default_version=dist_version, where=f"entry point {ep.name}"
        )
        candidate.name = candidate.spec.name
    except (Exception, SystemExit) as e:
        candidate.error = f"cannot load entry point {ep.name} = {ep.value!r}: {_describe(e)}"
        log.debug("entry point %s failed:\n%s", ep.name, traceback.format_exc())
    return candidate


def discover_entry_points(
    forced: SandboxPolicy = NO_FORCING, *, import_timeout: float = IMPORT_TIMEOUT
) -> list[PluginCandidate]:
    """Load every entry point of the ``orrery.plugins`` group."""
    return [load_entry_point(ep, forced, import_timeout=import_timeout) for ep in entry_points()]


def forget_entry_point_modules(entry_point: str) -> list[str]:
    """Drop the top-level package an entry point lives in from ``sys.modules``, so the
    next load imports the code now installed (after a pip upgrade)."""
    top = entry_point.partition(":")[0].partition(".")[0].strip()
    return forget_modules(top) if top else []


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


def _sandboxed_candidate(
    candidate: PluginCandidate, declaration: Any, target: Any, default_version: str
) -> PluginCandidate:
    try:
        candidate.spec = validate_sandboxed(
            declaration,
            target,
            default_name=candidate.name,
            default_version=default_version,
            where=candidate.source,
        )
        candidate.name = candidate.spec.name
    except PluginError as e:
        candidate.error = str(e)
    return candidate


def load_folder_plugin(
    path: Path, forced: SandboxPolicy = NO_FORCING, *, import_timeout: float = IMPORT_TIMEOUT
) -> PluginCandidate:
    """Import one plugin file or package freshly and validate its single Plugin class.

    A plugin declared ``sandbox = True`` (or forced by ``forced(name)``) is not imported
    here: its declaration is read from source and the sandbox worker imports it.
    """
    from orrery.sandbox import PluginTarget

    default = _default_name(path)
    candidate = PluginCandidate(name=default, source=str(path), kind="folder", path=path)
    target = PluginTarget.from_path(path)
    admission = admit(target, default, forced, sources=folder_sources(path), describe=_describe)
    if admission.error is not None:
        candidate.error = f"{path}: {admission.error}"
        return candidate
    if admission.sandboxed:
        return _sandboxed_candidate(candidate, admission.declaration, target, FOLDER_VERSION)
    try:
        module = import_guarded(lambda: import_fresh(path), timeout=import_timeout, what=str(path))
    except PluginError as e:
        candidate.error = str(e)
        return candidate
    except (Exception, SystemExit) as e:
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


def class_candidate(cls: Any) -> PluginCandidate:
    """A plugin handed over as a class (embedding, tests) rather than discovered."""
    where = f"{getattr(cls, '__module__', '?')}:{getattr(cls, '__qualname__', cls)!s}"
    default = "".join(
        f"-{c.lower()}" if c.isupper() and i else c.lower()
        for i, c in enumerate(getattr(cls, "__name__", "plugin"))
    )
    candidate = PluginCandidate(name=default, source=f"class {where}", kind="class")
    try:
        candidate.spec = validate_plugin_class(
            cls, default_name=default, default_version="0.0.0", where=f"class {where}"
        )
        candidate.name = candidate.spec.name
    except PluginError as e:
        candidate.error = str(e)
    return candidate


def discover_folder(
    folder: Path, forced: SandboxPolicy = NO_FORCING, *, import_timeout: float = IMPORT_TIMEOUT
) -> list[PluginCandidate]:
    """Load every plugin file and package in ``folder``."""
    return [
        load_folder_plugin(path, forced, import_timeout=import_timeout)
        for path in folder_entries(folder)
    ]
