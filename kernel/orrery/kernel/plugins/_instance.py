"""What the lifecycle drives: one running version of a plugin, in process or sandboxed.

`PluginInstance` is the protocol both kinds implement — `LocalInstance` here for a plugin
running in the kernel process, ``orrery.sandbox.SandboxHost`` for one in a worker — so
the lifecycle never asks which kind it holds.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import pluggy
from orrery.kernel.errors import PluginError
from orrery.sdk import Context, Plugin

from ._hooks import NOT_IMPLEMENTED, call_plugin_hook

__all__ = ["LocalInstance", "PluginInstance"]

# Each in-process instance registers with pluggy under its own name, so a new version
# can start beside the old one during a hot swap.
_serial = itertools.count(1)


@runtime_checkable
class PluginInstance(Protocol):
    """One running version of a plugin.

    ``state`` compares equal to ``"active"``, ``"stopped"``, ``"failed"``…; after `stop`
    a ``"failed"`` state with ``last_error`` means the plugin did not stop cleanly (or its
    sandbox circuit had opened). Hook errors are `orrery.sdk.PluginError`s.
    """

    @property
    def state(self) -> str: ...

    @property
    def last_error(self) -> str | None: ...

    @property
    def layers(self) -> Sequence[str]: ...

    @property
    def restarts(self) -> int: ...

    async def start(self, *, state: dict[str, Any] | None = None) -> None:
        """Run ``orrery_restore(state)`` (when given) and ``orrery_start``."""

    async def call_hook(self, hook_name: str, **kwargs: Any) -> Any:
        """Run one hook; None when the plugin does not implement it."""

    async def handover(self) -> dict[str, Any]:
        """Live objects for the next version (``orrery_handover``), right after the
        snapshot of a hot swap; empty when there are none or they cannot cross over."""

    async def stop(self, *, drain: bool = False) -> None:
        """Run ``orrery_stop`` and end the instance (it holds nothing afterwards)."""


class LocalInstance:
    """A plugin running in the kernel process, registered with the kernel's pluggy."""

    layers: tuple[str, ...] = ()
    restarts = 0

    def __init__(
        self,
        name: str,
        plugin_class: type[Plugin],
        pm: pluggy.PluginManager,
        ctx: Context,
        *,
        start_timeout: float,
        stop_timeout: float,
        hook_timeout: float,
    ) -> None:
        self.name = name
        self.plugin_class = plugin_class
        self.pm = pm
        self.ctx = ctx
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.hook_timeout = hook_timeout
        self.plugin: Plugin | None = None
        self.state = "new"
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"<LocalInstance {self.name!r} {self.state}>"

    async def _hook(self, hook: str, timeout: float, **kwargs: Any) -> Any:
        assert self.plugin is not None
        result = await call_plugin_hook(
            self.pm, self.plugin, hook, plugin=self.name, timeout=timeout, ctx=self.ctx, **kwargs
        )
        return None if result is NOT_IMPLEMENTED else result

    async def start(self, *, state: dict[str, Any] | None = None) -> None:
        """Instantiate, register, restore and start; on failure nothing stays registered."""
        self.state = "starting"
        try:
            self.plugin = self.plugin_class()
            self.pm.register(self.plugin, name=f"{self.name}:{next(_serial)}")
            if state is not None:
                await self._hook("orrery_restore", self.start_timeout, state=state)
            await self._hook("orrery_start", self.start_timeout)
        except BaseException as e:
            self._unregister()
            self.state, self.last_error = "failed", str(e)
            if isinstance(e, PluginError | asyncio.CancelledError) or not isinstance(e, Exception):
                raise
            raise PluginError(
                f"plugin {self.name!r} could not start: {type(e).__name__}: {e}", plugin=self.name
            ) from e
        self.state = "active"

    async def call_hook(self, hook_name: str, **kwargs: Any) -> Any:
        if self.state not in ("active", "stopping"):
            raise PluginError(f"plugin {self.name!r} is {self.state}, not active", plugin=self.name)
        return await self._hook(hook_name, self.hook_timeout, **kwargs)

    async def handover(self) -> dict[str, Any]:
        live = await self.call_hook("orrery_handover")
        return {} if live is None else live

    async def stop(self, *, drain: bool = False) -> None:
        # ``drain`` concerns a worker's own queues; an in-process plugin's subscriptions
        # live on the kernel's bus, which the lifecycle hands over itself.
        if self.state != "active":
            self._unregister()
            return
        self.state = "stopping"
        try:
            await self._hook("orrery_stop", self.stop_timeout)
        except PluginError as e:
            # Stopping goes on regardless: the kernel still releases what the plugin holds.
            self.state, self.last_error = "failed", str(e)
        else:
            self.state = "stopped"
        finally:
            self._unregister()

    def _unregister(self) -> None:
        if self.plugin is not None and self.pm.is_registered(self.plugin):
            self.pm.unregister(self.plugin)
