"""The manager's record of one plugin, and what it needs from the bus and storage."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from orrery.kernel.config import PluginSettings
from orrery.sdk import Journal, Store

from ._context import KernelContext, ReleasableBus
from ._instance import PluginInstance
from ._loading import PluginCandidate
from ._state import PluginInfo

__all__ = ["BusProvider", "PluginRuntime", "StorageProvider"]


class BusProvider(Protocol):
    def client(
        self,
        source: str,
        *,
        staged: bool = False,
        namespace: str | None = None,
        permissions: Iterable[str] = (),
    ) -> ReleasableBus: ...


class StorageProvider(Protocol):
    def store(self, namespace: str) -> Store: ...

    def journal(self, namespace: str | None = None) -> Journal: ...


@dataclass(eq=False)
class PluginRuntime:
    """One plugin as the manager tracks it: where it came from, its configuration and,
    when active, its instance and Context."""

    info: PluginInfo
    candidate: PluginCandidate
    settings: PluginSettings | None = None
    config: Any = None
    #: The running instance (in process, or the SandboxHost of a sandboxed plugin).
    instance: PluginInstance | None = None
    ctx: KernelContext[Any] | None = None
    #: The FAILED state came from resolution (recomputed), not from the plugin's own start.
    resolution_failed: bool = False

    @property
    def name(self) -> str:
        return self.info.name

    def describe(self) -> None:
        """Copy what the candidate declares (version, source, requires…) into ``info``."""
        info, candidate, spec = self.info, self.candidate, self.candidate.spec
        info.version = candidate.version
        info.source = candidate.source
        if spec is not None:
            info.requires = {k: str(v) for k, v in spec.requires.items()}
            info.optional = {k: str(v) for k, v in spec.optional.items()}
            info.sandbox = spec.sandbox or bool(self.settings and self.settings.sandbox)
