"""Validation of Plugin classes: name, version, specifiers, Config, permissions, hooks."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orrery.kernel.errors import PluginValidationError
from orrery.sdk import Plugin, hookspecs
from orrery.sdk.wire import PROJECT_NAME
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel

__all__ = ["NAME_PATTERN", "PluginSpec", "validate_plugin_class", "validate_sandboxed"]

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_IMPL_MARK = f"{PROJECT_NAME}_impl"
_HOOK_ARGS: dict[str, frozenset[str]] = {
    name: frozenset(inspect.signature(fn).parameters)
    for name, fn in vars(hookspecs).items()
    if name.startswith("orrery_") and callable(fn)
}


@dataclass(frozen=True)
class PluginSpec:
    """A validated plugin and what it declares.

    An in-process plugin has its ``plugin_class``; a sandboxed one has only a ``target``
    the worker imports (the kernel never runs its code) and no ``config_model`` (the
    worker validates its configuration).
    """

    name: str
    version: str
    requires: Mapping[str, SpecifierSet]
    optional: Mapping[str, SpecifierSet]
    permissions: tuple[str, ...]
    sandbox: bool
    plugin_class: type[Plugin] | None = None
    config_model: type[BaseModel] | None = None
    target: Any = None  # orrery.sandbox.PluginTarget for sandboxed plugins


@dataclass(frozen=True)
class _Declared:
    name: str
    version: str
    requires: dict[str, SpecifierSet]
    optional: dict[str, SpecifierSet]
    permissions: tuple[str, ...]


def _validate_declared(
    *,
    name: Any,
    version: Any,
    requires: Any,
    optional: Any,
    permissions: Any,
    default_name: str,
    where: str,
    owner: str,
) -> _Declared:
    """The checks shared by in-process and sandboxed plugins."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise PluginValidationError(
            f"{where}: plugin name {name!r} is invalid; use 1-64 lower-case letters, digits, "
            f"'-' or '_', starting with a letter (set name = \"...\" on {owner})",
            plugin=default_name,
        )

    def fail(message: str) -> PluginValidationError:
        return PluginValidationError(f"plugin {name!r} ({where}): {message}", plugin=name)

    try:
        Version(version)
    except (InvalidVersion, TypeError) as e:
        raise fail(f"version {version!r} is not a PEP 440 version such as '1.2.0'") from e
    required = _specifiers(requires, "requires", fail)
    optionals = _specifiers(optional, "optional", fail)
    both = set(required) & set(optionals)
    if both:
        raise fail(f"{', '.join(sorted(both))} is in both requires and optional; keep one")
    return _Declared(name, version, required, optionals, _permissions(permissions, fail))


def validate_plugin_class(
    obj: Any, *, default_name: str, default_version: str, where: str
) -> PluginSpec:
    """Check ``obj`` is a usable Plugin class; raise `PluginValidationError` saying what to fix.

    ``where`` describes the origin (file or entry point) for messages.
    """
    if not (isinstance(obj, type) and issubclass(obj, Plugin)) or obj is Plugin:
        raise PluginValidationError(
            f"{where} gives {obj!r}, which is not a subclass of orrery.sdk.Plugin; point it "
            f"at your Plugin class",
            plugin=default_name,
        )
    cls: type[Plugin] = obj
    declared = _validate_declared(
        name=cls.name or default_name,
        version=cls.version or default_version,
        requires=cls.requires,
        optional=cls.optional,
        permissions=cls.permissions,
        default_name=default_name,
        where=where,
        owner=cls.__qualname__,
    )

    def fail(message: str) -> PluginValidationError:
        return PluginValidationError(
            f"plugin {declared.name!r} ({where}): {message}", plugin=declared.name
        )

    config_model = cls.Config
    if config_model is not None and not (
        isinstance(config_model, type) and issubclass(config_model, BaseModel)
    ):
        raise fail(f"Config must be a pydantic BaseModel subclass, got {config_model!r}")
    if not isinstance(cls.sandbox, bool):
        raise fail(f"sandbox must be True or False, got {cls.sandbox!r}")
    _check_hooks(cls, fail)
    return PluginSpec(
        name=declared.name,
        version=declared.version,
        requires=declared.requires,
        optional=declared.optional,
        permissions=declared.permissions,
        sandbox=cls.sandbox,
        plugin_class=cls,
        config_model=config_model,
    )


def validate_sandboxed(
    declaration: Any, target: Any, *, default_name: str, default_version: str, where: str
) -> PluginSpec:
    """Validate a sandboxed plugin from its source declaration (nothing is imported)."""
    declared = _validate_declared(
        name=declaration.name or default_name,
        version=declaration.version or default_version,
        requires=declaration.requires,
        optional=declaration.optional,
        permissions=list(declaration.permissions),
        default_name=default_name,
        where=where,
        owner=declaration.class_name,
    )
    return PluginSpec(
        name=declared.name,
        version=declared.version,
        requires=declared.requires,
        optional=declared.optional,
        permissions=declared.permissions,
        sandbox=True,
        target=target,
    )


def _specifiers(declared: Any, attribute: str, fail: Any) -> dict[str, SpecifierSet]:
    if not isinstance(declared, Mapping):
        raise fail(f"{attribute} must be a dict of plugin name -> PEP 440 specifier")
    out: dict[str, SpecifierSet] = {}
    for dep, spec in declared.items():
        if not isinstance(dep, str) or not NAME_PATTERN.fullmatch(dep):
            raise fail(f"{attribute} names {dep!r}, which is not a valid plugin name")
        try:
            out[dep] = SpecifierSet(spec or "")
        except (InvalidSpecifier, TypeError) as e:
            raise fail(
                f"{attribute}[{dep!r}] = {spec!r} is not a PEP 440 specifier; write e.g. "
                f"'>=0.1,<2' or '' for any version"
            ) from e
    return out


def _permissions(declared: Any, fail: Any) -> tuple[str, ...]:
    from orrery.sandbox import parse_permissions

    if isinstance(declared, str) or not isinstance(declared, list | tuple):
        raise fail(f"permissions must be a list of strings, got {declared!r}")
    try:
        parse_permissions(list(declared))
    except ValueError as e:
        raise fail(str(e)) from e
    return tuple(declared)


def _check_hooks(cls: type[Plugin], fail: Any) -> None:
    for attr in dir(cls):
        if not attr.startswith("orrery_"):
            continue
        member = getattr(cls, attr)
        if attr not in _HOOK_ARGS:
            close = difflib.get_close_matches(attr, list(_HOOK_ARGS), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise fail(f"{attr} is not an Orrery hook{hint}")
        if not callable(member) or getattr(member, _IMPL_MARK, None) is None:
            raise fail(f"{attr} is not marked @hookimpl, so it would never be called")
        params = [p for p in inspect.signature(member).parameters if p != "self"]
        unknown = [p for p in params if p not in _HOOK_ARGS[attr]]
        if unknown:
            allowed = ", ".join(sorted(_HOOK_ARGS[attr])) or "none"
            raise fail(f"{attr} takes unknown argument(s) {', '.join(unknown)}; allowed: {allowed}")
