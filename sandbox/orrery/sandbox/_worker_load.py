"""Worker-side loading: import the plugin, validate its config, apply in-process layers,
and turn the host's error rows back into SDK exceptions.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

from orrery.sdk import (
    NoResponders,
    OrreryError,
    PermissionDenied,
    Plugin,
    RequestTimeout,
    ServiceNotFound,
    WrongExpectedVersion,
)
from orrery.sdk.errors import ConfigError

__all__ = ["apply_layers", "decode_error", "load_plugin_class", "validate_config"]


def decode_error(row: list[Any]) -> BaseException:
    """Turn an error the host sent back into the SDK exception the plugin expects."""
    name, message, attrs = row[0], row[1], row[2]
    try:
        if name == "PermissionDenied":
            return PermissionDenied(attrs["plugin"], attrs["action"], attrs.get("resource", ""))
        if name == "RequestTimeout":
            return RequestTimeout(attrs["topic"], attrs["timeout"])
        if name == "NoResponders":
            return NoResponders(attrs["topic"])
        if name == "ServiceNotFound":
            return ServiceNotFound(attrs["key"])
        if name == "WrongExpectedVersion":
            return WrongExpectedVersion(attrs["stream"], attrs["expected"], attrs["actual"])
    except KeyError:
        pass
    return OrreryError(f"{name}: {message}")


def load_plugin_class(target: Mapping[str, Any]) -> type[Plugin]:
    """Import the plugin and return its `Plugin` subclass."""
    sys.path[:0] = [p for p in target.get("sys_path") or () if p not in sys.path]
    ref = target.get("ref")
    if ref:
        module_name, _, attr = ref.partition(":")
        module = importlib.import_module(module_name)
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not (isinstance(obj, type) and issubclass(obj, Plugin)):
            raise TypeError(f"{ref} is not a Plugin subclass")
        return obj
    path = str(target["path"])
    if os.path.isdir(path):
        name = os.path.basename(path.rstrip("/"))
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(path, "__init__.py"), submodule_search_locations=[path]
        )
    else:
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import a plugin from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    found = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Plugin) and v is not Plugin
        and v.__module__ == name
    ]
    if len(found) != 1:
        raise TypeError(
            f"{path} must define exactly one Plugin subclass, found "
            f"{[c.__name__ for c in found] or 'none'}"
        )
    return found[0]


def validate_config(cls: type[Plugin], raw: Mapping[str, Any]) -> Any:
    """Validate ``raw`` with the plugin's ``Config`` (pydantic or any callable)."""
    model = cls.Config
    if model is None:
        return dict(raw)
    try:
        if hasattr(model, "model_validate"):
            return model.model_validate(dict(raw))
        return model(**raw)
    except Exception as e:
        errors = getattr(e, "errors", None)
        path = None
        message = str(e)
        if callable(errors):
            try:
                # The first error, worded like the kernel's own config errors.
                first = errors()[0]
                path = ".".join(str(p) for p in first.get("loc", ()))
                message = str(first.get("msg", message))
                if "input" in first and first.get("type") != "missing":
                    message += f" (got {first['input']!r})"
            except Exception:  # noqa: BLE001 - best effort location
                path = None
        raise ConfigError(message, path=path) from e


def apply_layers(setup: Mapping[str, Any]) -> dict[str, Any]:
    """Give up root, then restrict files and syscalls, before any plugin code runs.

    A failure to drop privileges is fatal (raised); the other layers report an error
    the host turns into a missing layer.
    """
    from ._privileges import drop_privileges

    run_as = setup.get("run_as")
    applied: dict[str, Any] = {
        "privileges": drop_privileges((int(run_as[0]), int(run_as[1])) if run_as else None)
    }
    # Only now: scratch belongs to the user the worker switched to.
    os.chdir(os.environ.get("HOME") or "/")
    landlock = setup.get("landlock")
    if landlock:
        from ._landlock import restrict_paths

        try:
            applied["landlock"] = restrict_paths(
                landlock["read"], landlock["write"], deny_tcp=landlock["deny_tcp"]
            )
        except OSError as e:
            applied["landlock"] = f"error: {e}"
    seccomp = setup.get("seccomp")
    if seccomp:
        from ._seccomp import install_filter

        try:
            applied["seccomp"] = install_filter(deny_families=seccomp["deny_families"])
        except OSError as e:
            applied["seccomp"] = f"error: {e}"
    return applied
