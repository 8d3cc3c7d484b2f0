"""Out-of-process plugin host: worker, IPC protocol, limits, isolation and supervision.

Names are imported on first use, so that ``parse_permissions`` (which the kernel calls
for every plugin) and the worker process do not pay for the host machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._binding import RemoteService
    from ._bridge import AUDIT_TOPIC
    from ._declaration import PluginDeclaration, read_declaration
    from ._detect import LayerStatus, detect_layers
    from ._host import HostState, SandboxHost
    from ._launch import PluginTarget
    from ._limits import LAYER_NAMES, SandboxLimits
    from ._permissions import SCOPES, Permissions, parse_permissions, pattern_covers
    from .errors import (
        CircuitOpen,
        HookTimeout,
        LayerUnavailable,
        RemoteError,
        SandboxError,
        WorkerCrashed,
        WorkerStartError,
    )

__all__ = [
    "AUDIT_TOPIC",
    "LAYER_NAMES",
    "SCOPES",
    "CircuitOpen",
    "HookTimeout",
    "HostState",
    "LayerStatus",
    "LayerUnavailable",
    "Permissions",
    "PluginDeclaration",
    "PluginTarget",
    "RemoteError",
    "RemoteService",
    "SandboxError",
    "SandboxHost",
    "SandboxLimits",
    "WorkerCrashed",
    "WorkerStartError",
    "detect_layers",
    "parse_permissions",
    "read_declaration",
    "pattern_covers",
]

_EXPORTS: dict[str, str] = {
    "AUDIT_TOPIC": "._bridge",
    "CircuitOpen": ".errors",
    "HookTimeout": ".errors",
    "HostState": "._host",
    "LAYER_NAMES": "._limits",
    "LayerStatus": "._detect",
    "LayerUnavailable": ".errors",
    "Permissions": "._permissions",
    "PluginDeclaration": "._declaration",
    "PluginTarget": "._launch",
    "RemoteError": ".errors",
    "RemoteService": "._binding",
    "SCOPES": "._permissions",
    "SandboxError": ".errors",
    "SandboxHost": "._host",
    "SandboxLimits": "._limits",
    "WorkerCrashed": ".errors",
    "WorkerStartError": ".errors",
    "detect_layers": "._detect",
    "parse_permissions": "._permissions",
    "pattern_covers": "._permissions",
    "read_declaration": "._declaration",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
