"""Lifecycle states (after OSGi) and the public record of one plugin."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PluginInfo", "PluginState"]


class PluginState(enum.StrEnum):
    """Where a plugin is in its lifecycle; compares equal to its lower-case name."""

    DISCOVERED = "discovered"
    RESOLVED = "resolved"
    STARTING = "starting"
    ACTIVE = "active"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    UNINSTALLED = "uninstalled"


@dataclass(eq=False)
class PluginInfo:
    """What the kernel knows about one plugin (``k.plugins[name]``)."""

    name: str
    version: str
    source: str
    state: PluginState = PluginState.DISCOVERED
    error: str | None = None
    requires: dict[str, str] = field(default_factory=dict)
    optional: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    sandbox: bool = False
    #: For a sandboxed plugin: the isolation layers active for it, and worker restarts.
    layers: list[str] = field(default_factory=list)
    restarts: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary, as listed by ``GET /v1/plugins`` and ``plugins ls --json``."""
        return {
            "name": self.name,
            "version": self.version,
            "state": str(self.state),
            "source": self.source,
            "error": self.error,
            "enabled": self.enabled,
            "requires": dict(self.requires),
            "sandbox": self.sandbox,
            "layers": list(self.layers),
            "restarts": self.restarts,
        }
