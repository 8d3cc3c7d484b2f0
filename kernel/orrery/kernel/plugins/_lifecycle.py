"""Starting, stopping and hot-swapping plugin instances: the mechanics under the manager.

Every state change of a plugin goes through `Lifecycle.transition`, which also announces
it on the bus as ``orrery.plugin.<state>``.

A swap never loses an event. The old instance is *held* (its subscriptions keep
queueing, nothing is handled) and snapshotted; the new instance is restored and started
*staged* (its subscriptions, services and routes are not visible yet) while the old one
keeps its place. Then, in one step with no await in between, the new subscriptions take
over and inherit what the old ones had queued, and the new services and routes replace
the old. Only then does the old instance stop. If anything before that step fails, the
old instance resumes exactly where it was held. Dependents are not restarted: they reach
services through live handles that follow the provider (see `ServiceHandle`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

import pluggy
from orrery.kernel.config import OrreryConfig, plugin_section, validate_plugin_config
from orrery.kernel.errors import PluginError
from orrery.sdk import Bus, Clock, ConfigError, SystemClock

from ._context import KernelContext
from ._instance import LocalInstance, PluginInstance
from ._loading import PluginCandidate
from ._routes import PluginRoutes, RouteTable
from ._runtime import BusProvider, PluginRuntime, StorageProvider
from ._services import PluginServices, ServiceRegistry
from ._state import PluginState

__all__ = ["Lifecycle", "warn_unless_json"]

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
    """Creates, starts, stops, swaps and discards plugin instances and their Contexts."""

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
        self.bus = bus
        self.storage = storage
        self.events: Bus | None = bus.client(f"orrery://{node_id}/kernel") if bus else None
        # Announcements wait here until an async caller flushes them, in order: state
        # changes made by synchronous code (resolution) are published too.
        self._outbox: deque[tuple[str, dict[str, Any], str]] = deque()
        self._flushing = asyncio.Lock()

    def start_timeout(self, rt: PluginRuntime) -> float:
        return (rt.settings and rt.settings.start_timeout) or self.config.kernel.start_timeout

    def stop_timeout(self, rt: PluginRuntime) -> float:
        return (rt.settings and rt.settings.stop_timeout) or self.config.kernel.stop_timeout

    # -- states and announcements --------------------------------------------------------

    def transition(self, rt: PluginRuntime, state: PluginState, error: str | None = None) -> None:
        """Set ``rt``'s state (and error) and queue ``orrery.plugin.<state>``; the only
        place a plugin's state changes. Async callers then `flush`."""
        rt.info.state, rt.info.error = state, error
        self.announce(rt, str(state), error)

    def announce(self, rt: PluginRuntime, what: str, error: str | None) -> None:
        """Queue ``orrery.plugin.<what>`` (a state, ``reloaded`` or ``reload_failed``)."""
        if self.events is None:
            return
        data = {
            "name": rt.info.name,
            "version": rt.info.version,
            "state": str(rt.info.state),
            "error": error,
            "source": rt.info.source,
        }
        self._outbox.append((f"orrery.plugin.{what}", data, rt.info.name))

    async def flush(self) -> None:
        """Publish every queued announcement, in the order the changes happened."""
        if not self._outbox or self.events is None:
            return
        async with self._flushing:
            while self._outbox:
                topic, data, key = self._outbox.popleft()
                await self.events.publish(topic, data, key=key)

    async def _set(self, rt: PluginRuntime, state: PluginState, error: str | None = None) -> None:
        self.transition(rt, state, error)
        await self.flush()

    # -- instances -----------------------------------------------------------------------

    def new_context(
        self,
        rt: PluginRuntime,
        *,
        staged: bool = False,
        restored: dict[str, Any] | None = None,
        handed_over: dict[str, Any] | None = None,
    ) -> KernelContext[Any]:
        name = rt.info.name
        if self.bus is None or self.storage is None:
            raise PluginError(f"plugin {name!r}: the kernel is not running", plugin=name)
        storage = self.storage
        spec = rt.candidate.spec
        return KernelContext(
            name=name,
            config=rt.config,
            node_id=self.node_id,
            clock=self.clock,
            restored=restored,
            handed_over=handed_over,
            # Named after the plugin: its queue groups and durable names are its own.
            bus=self.bus.client(
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

    def _new_instance(self, rt: PluginRuntime, ctx: KernelContext[Any]) -> PluginInstance:
        spec = rt.candidate.spec
        assert spec is not None
        if spec.plugin_class is not None:
            return LocalInstance(
                rt.name,
                spec.plugin_class,
                self.pm,
                ctx,
                start_timeout=self.start_timeout(rt),
                stop_timeout=self.stop_timeout(rt),
                hook_timeout=self.config.kernel.hook_timeout,
            )
        from orrery.sandbox import SandboxHost, SandboxLimits, parse_permissions

        assert rt.settings is not None
        sandbox = rt.settings.sandbox if isinstance(rt.settings.sandbox, dict) else {}
        limits = SandboxLimits.from_config({"start_timeout": self.start_timeout(rt), **sandbox})
        host: PluginInstance = SandboxHost(
            rt.name,
            spec.target,
            ctx,
            permissions=parse_permissions(spec.permissions),
            limits=limits,
            config=rt.config or {},
            on_failed=lambda failed, error: self._circuit_opened(rt, failed, error),
        )
        return host

    async def launch(
        self,
        rt: PluginRuntime,
        *,
        restore: dict[str, Any] | None = None,
        handed_over: dict[str, Any] | None = None,
        staged: bool = False,
    ) -> tuple[PluginInstance, KernelContext[Any]]:
        """Create, restore and start an instance of the runtime's current candidate.

        ``restore`` (the previous version's snapshot) reaches ``orrery_restore`` and
        ``ctx.restored``; ``handed_over`` (its ``orrery_handover``) ``ctx.handed_over``.
        Raises `PluginError` (or `HookTimeout`) and leaves nothing behind on failure.
        """
        ctx = self.new_context(rt, staged=staged, restored=restore, handed_over=handed_over)
        try:
            instance = self._new_instance(rt, ctx)
            await instance.start(state=restore)
        except BaseException as e:
            await ctx.release(self.config.kernel.stop_timeout)
            if isinstance(e, ConfigError):
                raise PluginError(str(e), plugin=rt.name) from e
            raise
        return instance, ctx

    async def _circuit_opened(
        self, rt: PluginRuntime, instance: PluginInstance, error: BaseException
    ) -> None:
        """A sandboxed worker kept crashing and its circuit opened: the plugin is failed."""
        if rt.instance is not instance or rt.ctx is None:
            return  # an old version's instance, already replaced
        ctx, rt.instance, rt.ctx = rt.ctx, None, None
        await ctx.release(self.config.kernel.stop_timeout)
        log.error("sandboxed plugin %s failed: %s", rt.name, error)
        await self._set(rt, S.FAILED, str(error))

    def refresh_info(self, rt: PluginRuntime) -> None:
        """Copy the running instance's isolation layers and restart count into its info."""
        if rt.instance is not None:
            rt.info.layers = list(rt.instance.layers)
            rt.info.restarts = rt.instance.restarts

    # -- start and stop ------------------------------------------------------------------

    async def start(self, rt: PluginRuntime, *, restore: dict[str, Any] | None = None) -> bool:
        """Start ``rt`` and make it ACTIVE; on failure it is FAILED with the reason."""
        began = time.perf_counter()
        await self._set(rt, S.STARTING)
        try:
            rt.instance, rt.ctx = await self.launch(rt, restore=restore)
        except PluginError as e:
            log.error("plugin %s failed to start: %s", rt.name, e, exc_info=e.__cause__ or e)
            await self._set(rt, S.FAILED, str(e))
            return False
        except asyncio.CancelledError:
            await self._set(rt, S.STOPPED, "start was cancelled")
            raise
        await self._set(rt, S.ACTIVE)
        log.info(
            "started %s %s from %s in %.1f ms",
            rt.name,
            rt.info.version,
            rt.info.source,
            (time.perf_counter() - began) * 1000,
        )
        return True

    async def retire(self, instance: PluginInstance, ctx: KernelContext[Any]) -> str | None:
        """Stop ``instance`` and release its Context; returns the stop error, if any."""
        try:
            await instance.stop()
        finally:
            await ctx.release(self.config.kernel.stop_timeout)
        return instance.last_error if instance.state == "failed" else None

    async def stop(self, rt: PluginRuntime, *, final_state: PluginState = S.STOPPED) -> None:
        """Stop an ACTIVE runtime and release what it holds."""
        assert rt.instance is not None and rt.ctx is not None
        await self._set(rt, S.STOPPING)
        instance, ctx = rt.instance, rt.ctx
        rt.instance = rt.ctx = None
        error = await self.retire(instance, ctx)
        if error is not None:
            log.warning("plugin %s did not stop cleanly: %s", rt.name, error)
        await self._set(rt, final_state, error)
        log.info("stopped %s", rt.name)

    async def mark(self, rt: PluginRuntime, state: PluginState, error: str | None = None) -> None:
        """Move a runtime that is not running to ``state`` (resolved, failed, uninstalled)."""
        await self._set(rt, state, error)

    # -- hooks of the running instance ---------------------------------------------------

    async def snapshot(self, rt: PluginRuntime) -> dict[str, Any] | None:
        """The active instance's ``orrery_snapshot`` (None when it has none)."""
        assert rt.instance is not None
        state = await rt.instance.call_hook("orrery_snapshot")
        if state is None:
            return None
        warn_unless_json(rt.name, state)
        return dict(state)

    async def handover(self, rt: PluginRuntime) -> dict[str, Any]:
        """The active instance's live objects for its next version (``orrery_handover``);
        empty when it has none, or lives in another process."""
        assert rt.instance is not None
        live = await rt.instance.handover()
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
            answer = await rt.instance.call_hook("orrery_health")
        except PluginError as e:
            return {"ok": False, "error": str(e)}
        return {"ok": True} if answer is None else dict(answer)

    # -- hot swap ------------------------------------------------------------------------

    async def swap(self, rt: PluginRuntime, fresh: PluginCandidate) -> None:
        """Replace ``rt``'s ACTIVE instance with one of ``fresh`` without losing an event.

        Raises `PluginError` saying why when the new version was rejected; the old
        version then keeps serving and ``orrery.plugin.reload_failed`` is published.
        """
        try:
            await self._swap(rt, fresh)
        except BaseException as e:
            if rt.candidate is not fresh:
                fresh.unload()
            if not isinstance(e, PluginError):
                raise  # cancelled mid-swap (kernel stopping): the old version is in place
            rt.info.error = str(e)
            log.error("%s", e)
            self.announce(rt, "reload_failed", str(e))
            await self.flush()
            raise

    async def _swap(self, rt: PluginRuntime, fresh: PluginCandidate) -> None:
        name = rt.name
        if fresh.error is not None or fresh.spec is None:
            raise PluginError(
                f"reload of {name!r} failed, old version kept: {fresh.error}", plugin=name
            )
        if fresh.spec.name != name:
            raise PluginError(
                f"reload of {name!r} failed: the new code is named {fresh.spec.name!r}; a "
                f"rename is a new plugin, so restart the kernel instead",
                plugin=name,
            )
        try:
            settings, config = validate_plugin_config(
                name,
                fresh.spec.config_model,
                plugin_section(self.config, name),
                validated_elsewhere=fresh.spec.target is not None,
            )
        except ConfigError as e:
            raise PluginError(
                f"reload of {name!r} failed, old version kept: {e}", plugin=name
            ) from e
        assert rt.instance is not None and rt.ctx is not None
        began = time.perf_counter()
        old_instance, old_ctx, old_candidate = rt.instance, rt.ctx, rt.candidate
        await old_ctx.bus.hold()
        try:
            state = await self.snapshot(rt)
            live = await self.handover(rt)
            incoming = PluginRuntime(
                info=rt.info, candidate=fresh, settings=settings, config=config
            )
            instance, ctx = await self.launch(
                incoming, restore=state, handed_over=live, staged=True
            )
        except PluginError as e:
            old_ctx.bus.resume()
            raise PluginError(
                f"reload of {name!r} failed, old version kept: {e}", plugin=name
            ) from e
        except BaseException:
            old_ctx.bus.resume()
            raise
        # The swap itself: no await from here until the runtime points at the new instance.
        moved = ctx.bus.take_over(old_ctx.bus)
        ctx.activate()
        rt.instance, rt.ctx = instance, ctx
        rt.candidate, rt.settings, rt.config = fresh, settings, config
        rt.describe()
        rt.info.error = None
        await self.retire(old_instance, old_ctx)
        old_candidate.unload()
        log.info(
            "reloaded %s %s in %.1f ms (%d queued event%s handed over)",
            name,
            rt.info.version,
            (time.perf_counter() - began) * 1000,
            moved,
            "" if moved == 1 else "s",
        )
        self.announce(rt, "reloaded", None)
        await self.flush()
