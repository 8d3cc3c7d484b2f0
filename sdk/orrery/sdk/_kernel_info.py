"""The kernel's introspection service, as plugins see it: ``ctx.services.get(KERNEL)``."""

from __future__ import annotations

from typing import Any, Protocol

from ._services import ServiceKey

__all__ = ["KERNEL", "KernelInfo"]


class KernelInfo(Protocol):
    """What the kernel is doing, computed when asked (nothing runs per event).

    Every method returns plain, JSON-able data.
    """

    def snapshot(self) -> dict[str, Any]:
        """Node id, bus backend, time, plugin states, bus queue depths, HTTP stats."""

    def plugins(self) -> dict[str, Any]:
        """``{"total", "by_state": {state: n}, "items": [{name, state, version, ...}]}``."""

    def queue_depth(self) -> dict[str, int]:
        """Events queued and not yet handled, per subscribing plugin (or ``kernel``)."""

    def bus_traffic(self) -> dict[str, dict[str, int]]:
        """Bus counters per topic prefix (e.g. published, delivered), read at scrape time."""


#: The kernel introspection service (registered by the kernel under ``orrery.kernel``).
KERNEL: ServiceKey[KernelInfo] = ServiceKey("orrery.kernel")
