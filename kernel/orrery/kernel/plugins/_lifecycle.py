"""Starting and stopping one plugin instance: the mechanics under the manager."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from typing import Any

import pluggy
from orrery.kernel._config import OrreryConfig
from orrery.kernel.errors import PluginError
from orrery.sdk import Bus, Clock, ConfigError, Plugin, SystemClock

from ._context import KernelContext
from ._hooks import NOT_IMPLEMENTED, call_plugin_hook
from ._routes import PluginRoutes, RouteTable
from ._runtime import BusProvider, PluginRuntime, StorageProvider
from ._services import PluginServices, ServiceRegistry
from ._state import PluginState

__all__ = ["Instance", "Lifecycle", "warn_unless_json"]

#: A running plugin: an in-process Plugin, or an orrery.sandbox.SandboxHost.
Instance = Any

log = logging.getLogger("orrery.kernel.plugins")
S = PluginState


def warn_unless_json(name: str, state: Any) -> None:
    """Warn when a snapshot is not plain data: it could not cross a process boundary,
    and live objects belong in ``orrery_handover``."""
    try:
        json.dumps(state)
    except (TypeError, ValueError) as e:
        log.warning(
            "plugin %s: orrery_snapshot returned data that is not JSON-able (%s); return "
            "plain data there and hand live objects over with orrery_handover",
            name,
            e,
        )


class Lifecycle:
    """Creates, starts, stops and discards plugin instances and their Contexts, and
    announces every state change on the bus as ``orrery.plugin.<state>``."""

    def __init__(
        self,
        *,
        node_id: str,
        config: OrreryConfig,
        pm: pluggy.PluginManager,
        services: ServiceRegistry,
        routes: RouteTable,
        bus: BusProvider | None,
        storage: StorageProvider | None,
        clock: Clock | None = None,
    ) -> None:
        self.node_id = node_id
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.config = config
        self.pm = pm
        self.services = services
        self.routes = routes
        self._bus = bus
        self._storage = storage
        self._events: Bus | None = bus.client(f"orrery://{node_id}/kernel") if bus else None
        # Each instance registers with pluggy under its own name, so a new version can
        # start beside the old one during a hot swap.
        self._serial = itertools.count(1)

    def start_timeout(self, rt: PluginRuntime) -> float:
        return (rt.settings and rt.settings.start_timeout) or self.config.kernel.start_timeout

    def stop_timeout(self, rt: PluginRuntime) -> float:
        return (rt.settings and rt.settings.stop_timeout) or self.config.kernel.stop_timeout

    async def set_state(self, rt: PluginRuntime, state: PluginState, error: str | None) -> None:
        rt.info.state = state
        rt.info.error = error
        await self.announce(rt, str(state), error)

    async def announce(self, rt: PluginRuntime, what: str, error: str | None) -> None:
        """Publish ``orrery.plugin.<what>`` (a state, ``reloaded`` or ``reload_failed``)."""
        if self._events is not None:
            await self._events.publish(
                f"orrery.plugin.{what}",
                {
                    "name": rt.info.name,
                    "version": rt.info.version,
                    "state": str(rt.info.state),
                    "error": error,
                    "source": rt.info.source,
                },
                key=rt.info.name,
            )

    def new_context(
        self,
        rt: PluginRuntime,
        *,
        staged: bool = False,
        restored: dict[str, Any] | None = None,
        handed_over: dict[str, Any] | None = None,
    ) -> KernelContext[Any]:
        name = rt.info.name
        if self._bus is None or self._storage is None:
            raise PluginError(f"plugin {name!r}: the kernel is not running", plugin=name)
        storage = self._storage
        spec = rt.candidate.spec
        return KernelContext(
            name=name,
            config=rt.config,
            node_id=self.node_id,
            clock=self.clock,
            restored=restored,
            handed_over=handed_over,
            # Named after the plugin: its queue groups and durable names are its own.
            bus=self._bus.client(
                f"orrery://{self.node_id}/{name}",
                staged=staged,
                namespace=name,
                permissions=spec.permissions if spec is not None else (),
            ),
            services=PluginServices(self.services, name, staged=staged),
            routes=PluginRoutes(self.routes, name, staged=staged),
            store=storage.store(name),
            journal_factory=lambda: storage.journal(name),
        )

    async def launch(
        self,
        rt: PluginRuntime,
        *,
        restore: dict[str, Any] | None = None,
        handed_over: dict[str, Any] | None = None,
        staged: bool = False,
    ) -> tuple[Instance, KernelContext[Any]]:
        """Instantiate, register, restore and start the runtime's current candidate.

        ``restore`` (the previous version's snapshot) reaches ``orrery_restore`` and
        ``ctx.restored``; ``handed_over`` (its ``orrery_handover``) ``ctx.handed_over``.
        Raises `PluginError` (or `HookTimeout`) and leaves nothing behind on failure.
        """
        spec = rt.candidate.spec
        assert spec is not None
        if spec.target is not None:
            return await self._launch_sandboxed(rt, restore=restore, staged=staged)
        assert spec.plugin_class is not None
        name = rt.info.name
        timeout = self.start_timeout(rt)
        instance: Plugin | None = None
        ctx: KernelContext[Any] | None = None
        try:
            instance = spec.plugin_class()
            ctx = self.new_context(
                rt, staged=staged, restored=restore, handed_over=handed_over
            )
            self.pm.register(instance, name=f"{name}:{next(self._serial)}")
            if restore is not None:
                await call_plugin_hook(
                    self.pm,
                    instance,
                    "orrery_restore",
                    plugin=name,
                    timeout=timeout,
                    ctx=ctx,
                    state=restore,
                )
            await call_plugin_hook(
                self.pm, instance, "orrery_start", plugin=name, timeout=timeout, ctx=ctx
            )
        except Exception as e:
            await self.discard(instance, ctx)
            if isinstance(e, PluginError):
                raise
            raise PluginError(
                f"plugin {name!r} could not start: {type(e).__name__}: {e}", plugin=name
            ) from e
        except asyncio.CancelledError:
            await self.discard(instance, ctx)
            raise
        return instance, ctx

    async def _launch_sandboxed(
        self, rt: PluginRuntime, *, restore: dict[str, Any] | None, staged: bool
    ) -> tuple[Instance, KernelContext[Any]]:
        from orrery.sandbox import SandboxError, SandboxHost, SandboxLimits, parse_permissions

        spec = rt.candidate.spec
        assert spec is not None and rt.settings is not None
        sandbox = rt.settings.sandbox if isinstance(rt.settings.sandbox, dict) else {}
        limits = SandboxLimits.from_config({"start_timeout": self.start_timeout(rt), **sandbox})
        ctx = self.new_context(rt, staged=staged, restored=restore)
        host = SandboxHost(
            rt.name,
            spec.target,
            ctx,
            permissions=parse_permissions(spec.permissions),
            limits=limits,
            config=rt.config or {},
            on_failed=lambda failed, error: self._sandbox_failed(rt, failed, error),
        )
        try:
            await host.start(state=restore)
        except BaseException as e:
            await ctx.release(self.config.kernel.stop_timeout)
            if isinstance(e, (SandboxError, ConfigError)):
                raise PluginError(str(e), plugin=rt.name) from e
            raise
        return host, ctx

    async def _sandbox_failed(self, rt: PluginRuntime, host: Any, error: BaseException) -> None:
        """The worker kept crashing and its circuit opened: the plugin is failed."""
        if rt.instance is not host or rt.ctx is None:
            return  # an old version's host, already replaced
        ctx, rt.instance, rt.ctx = rt.ctx, None, None
        await ctx.release(self.config.kernel.stop_timeout)
        log.error("sandboxed plugin %s failed: %s", rt.name, error)
        await self.set_state(rt, S.FAILED, str(error))

    def refresh_sandbox_info(self, rt: PluginRuntime) -> None:
        host = rt.instance
        if host is not None and rt.candidate.spec is not None and rt.candidate.spec.target:
            rt.info.layers = list(host.layers)
            rt.info.restarts = host.restarts

    async def call(self, rt: PluginRuntime, instance: Instance, hook: str, **kwargs: Any) -> Any:
        """Run ``hook`` on one instance, in process or in its sandbox worker."""
        if isinstance(instance, Plugin):
            timeout = kwargs.pop("timeout")
            return await call_plugin_hook(
                self.pm, instance, hook, plugin=rt.name, timeout=timeout, **kwargs
            )
        from orrery.sandbox import SandboxError

        kwargs.pop("timeout")
        kwargs.pop("ctx", None)  # the worker has its own Context
        try:
            return await instance.call_hook(hook, **kwargs)
        except SandboxError as e:
            raise PluginError(f"plugin {rt.name!r}: {hook} failed: {e}", plugin=rt.name) from e

    async def start(self, rt: PluginRuntime, *, restore: dict[str, Any] | None = None) -> bool:
        """Start ``rt`` and make it ACTIVE; on failure it is FAILED with the reason."""
        began = time.perf_counter()
        await self.set_state(rt, S.STARTING, None)
        try:
            rt.instance, rt.ctx = await self.launch(rt, restore=restore)
        except PluginError as e:
            log.error("plugin %s failed to start: %s", rt.name, e, exc_info=e.__cause__ or e)
            await self.set_state(rt, S.FAILED, str(e))
            return False
        except asyncio.CancelledError:
            await self.set_state(rt, S.STOPPED, "start was cancelled")
            raise
        await self.set_state(rt, S.ACTIVE, None)
        log.info(
            "started %s %s from %s in %.1f ms",
            rt.name,
            rt.info.version,
            rt.info.source,
            (time.perf_counter() - began) * 1000,
        )
        return True

    async def retire(
        self, rt: PluginRuntime, instance: Instance, ctx: KernelContext[Any]
    ) -> str | None:
        """Call ``orrery_stop`` and release everything; returns the stop error, if any."""
        error: str | None = None
        if not isinstance(instance, Plugin):
            # A sandbox host runs orrery_stop in its worker and ends the worker.
            await instance.stop()
            await self.discard(None, ctx)
            return str(instance.last_error) if instance.state == "failed" else None
        try:
            await call_plugin_hook(
                self.pm,
                instance,
                "orrery_stop",
                plugin=rt.name,
                timeout=self.stop_timeout(rt),
                ctx=ctx,
            )
        except PluginError as e:
            # Stopping goes on regardless: the kernel still releases what the plugin holds.
            error = str(e)
            log.warning("plugin %s did not stop cleanly: %s", rt.name, e)
        finally:
            await self.discard(instance, ctx)
        return error

    async def stop(self, rt: PluginRuntime, *, final_state: PluginState = S.STOPPED) -> None:
        """Stop an ACTIVE runtime and release what it holds."""
        assert rt.instance is not None and rt.ctx is not None
        await self.set_state(rt, S.STOPPING, None)
        instance, ctx = rt.instance, rt.ctx
        rt.instance = rt.ctx = None
        error = await self.retire(rt, instance, ctx)
        await self.set_state(rt, final_state, error)
        log.info("stopped %s", rt.name)

    async def discard(self, instance: Instance | None, ctx: KernelContext[Any] | None) -> None:
        if instance is not None and self.pm.is_registered(instance):
            self.pm.unregister(instance)
        if ctx is not None:
            await ctx.release(self.config.kernel.stop_timeout)

    async def snapshot(self, rt: PluginRuntime) -> dict[str, Any] | None:
        """The active instance's ``orrery_snapshot`` (None when it has none)."""
        assert rt.instance is not None
        state = await self.call(
            rt, rt.instance, "orrery_snapshot", timeout=self.config.kernel.hook_timeout, ctx=rt.ctx
        )
        if state is NOT_IMPLEMENTED or state is None:
            return None
        warn_unless_json(rt.name, state)
        return dict(state)

    async def handover(self, rt: PluginRuntime) -> dict[str, Any]:
        """The active in-process instance's ``orrery_handover`` (empty when it has none).

        Sandboxed instances never hand over: their objects live in another process
        (the worker refuses a plugin that implements the hook).
        """
        assert rt.instance is not None
        if not isinstance(rt.instance, Plugin):
            return {}
        live = await self.call(
            rt, rt.instance, "orrery_handover", timeout=self.config.kernel.hook_timeout, ctx=rt.ctx
        )
        if live is NOT_IMPLEMENTED or live is None:
            return {}
        if not isinstance(live, dict):
            raise PluginError(
                f"plugin {rt.name!r}: orrery_handover returned {type(live).__name__}; "
                f"return a dict of name -> object",
                plugin=rt.name,
            )
        return live

    async def health(self, rt: PluginRuntime) -> dict[str, Any]:
        assert rt.instance is not None
        try:
            answer = await self.call(
                rt,
                rt.instance,
                "orrery_health",
                timeout=self.config.kernel.hook_timeout,
                ctx=rt.ctx,
            )
        except PluginError as e:
            return {"ok": False, "error": str(e)}
        return {"ok": True} if answer is NOT_IMPLEMENTED or answer is None else dict(answer)
