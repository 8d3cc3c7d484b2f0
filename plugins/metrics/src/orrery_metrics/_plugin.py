"""MetricsPlugin: wires the engine to the kernel through the Context."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Any

from orrery.sdk import Context, Plugin, ServiceKey, ServiceNotFound, hookimpl

from ._alerts import AlertNotice
from ._api import Commands
from ._clock import Clock
from ._config import MetricsConfig
from ._dashboards import DashboardBook
from ._engine import MetricsEngine
from ._export import Exposition, prometheus_exposition
from ._instrument import BUS_PATTERN, KernelInstruments
from ._kernel_stats import KERNEL_SERVICE, KernelSampler
from ._registry import MetricsRegistry
from ._service import MetricsService

__all__ = [
    "METRICS",
    "METRICS_ENGINE",
    "METRICS_EXPOSITION",
    "METRICS_SERVICE",
    "MetricsPlugin",
]

#: Snapshot key of the registry object handed from one version to the next in process.
_LIVE_REGISTRY = "live_registry"

#: The registry other plugins declare and update metrics in.
METRICS: ServiceKey[MetricsRegistry] = ServiceKey("metrics", MetricsRegistry)
#: The facade: series, forecasts, alerts, dashboards and anomaly checks (what the HTTP
#: API and the ``metrics.<command>`` bus requests offer), plus declaring metrics.
METRICS_SERVICE: ServiceKey[MetricsService] = ServiceKey("metrics.service", MetricsService)
#: The whole engine (time series, alert manager), for plugins such as dashboards.
METRICS_ENGINE: ServiceKey[MetricsEngine] = ServiceKey("metrics.engine", MetricsEngine)
#: ``() -> (content_type, body)``: one Prometheus scrape, for the daemon's ``GET /metrics``
#: (the daemon needs no import of this package to serve it).
METRICS_EXPOSITION: ServiceKey[Exposition] = ServiceKey("metrics.exposition")


class MetricsPlugin(Plugin):
    """Metrics service, time series, alerts, anomaly detection and forecasts."""

    name = "metrics"
    permissions = ("bus.publish:alert.>", "bus.subscribe:>", "bus.subscribe:metrics.>", "store")
    Config = MetricsConfig

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self.engine: MetricsEngine | None = None
        self._restored: dict[str, Any] | None = None
        self._stop: asyncio.Event | None = None
        self._loop: Awaitable[None] | None = None
        self._sampler: KernelSampler | None = None

    @staticmethod
    def _config(ctx: Context) -> MetricsConfig:
        config = ctx.config
        if isinstance(config, MetricsConfig):
            return config
        return MetricsConfig.model_validate(config or {})

    @hookimpl
    async def orrery_restore(self, ctx: Context, state: dict[str, Any]) -> None:
        """Take the previous version's state (kept until start builds the engine)."""
        if self.engine is None:
            self._restored = state
        else:
            self._restore(ctx, self.engine, state)

    @staticmethod
    def _restore(
        ctx: Context, engine: MetricsEngine, state: dict[str, Any], *, values: bool = True
    ) -> None:
        skipped = engine.restore(state, values=values)
        if skipped:
            ctx.log.warning("metrics not restored after reload: %s", ", ".join(skipped))

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        """Build the engine, provide the service, mount routes, start the loop."""
        config = self._config(ctx)
        restored = dict(self._restored or {})
        self._restored = None
        live = restored.pop(_LIVE_REGISTRY, None)
        adopted = live is not None and MetricsEngine.can_adopt(live, config, self._clock)
        if live is not None and not adopted:
            ctx.log.warning(
                "metrics reloaded with another registry (new code, clock or accuracy): values "
                "were copied, but metric objects other plugins hold keep updating the old "
                "one until they declare them again"
            )
        engine = self.engine = MetricsEngine(
            config, self._clock, registry=live if adopted else None
        )
        self._restore(ctx, engine, restored, values=not adopted)
        exposition = self._exposition(ctx, engine)
        ctx.services.provide(METRICS, engine.registry)
        ctx.services.provide(METRICS_ENGINE, engine)
        ctx.services.provide(METRICS_EXPOSITION, exposition)
        dashboards = DashboardBook(ctx.store, engine.config.dashboards)
        unreadable = await dashboards.load()
        if unreadable:
            ctx.log.warning("saved dashboards not valid, ignored: %s", ", ".join(unreadable))
        service = MetricsService(engine, dashboards, exposition)
        ctx.services.provide(METRICS_SERVICE, service)
        commands = Commands(service)
        commands.subscribe(ctx.bus)
        commands.mount(ctx.http)
        if engine.config.instrument_kernel:
            self._sampler = KernelSampler(engine.registry)
            # Synchronous on purpose: the bus calls an idle sync handler in place.
            instruments = KernelInstruments(engine.registry, own_source=f"/{ctx.name}")
            ctx.bus.subscribe(BUS_PATTERN, instruments.handle)
        self._stop = asyncio.Event()
        self._loop = ctx.spawn(self._evaluate_forever(ctx, self._stop), name="metrics-evaluation")

    @hookimpl
    async def orrery_stop(self, ctx: Context) -> None:
        """Stop the evaluation loop; the kernel releases subscriptions and routes."""
        if self._stop is not None:
            self._stop.set()
        if self._loop is not None:
            # The loop exits at its next wait; if the kernel already cancelled it, fine.
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        self._stop = self._loop = None
        self._sampler = None

    @hookimpl
    async def orrery_snapshot(self, ctx: Context) -> dict[str, Any]:
        """Metric values, time series and alert states for the next version, and the
        live registry itself: plugins hold its metric objects, and the next version
        keeps serving those same objects (no update between the two is lost)."""
        if self.engine is None:
            return {}
        return {**self.engine.snapshot(), _LIVE_REGISTRY: self.engine.registry}

    @hookimpl
    async def orrery_health(self, ctx: Context) -> dict[str, Any]:
        """Counts of metrics, series and alerts, and when the loop last ran."""
        if self.engine is None:
            return {"ok": False, "reason": "not started"}
        return self.engine.health()

    def _exposition(self, ctx: Context, engine: MetricsEngine) -> Exposition:
        """The scrape service: fresh kernel figures first, then the exposition."""
        expose = prometheus_exposition(engine.registry)

        def scrape() -> tuple[str, bytes]:
            self.sample_kernel(ctx)
            return expose()

        return scrape

    def sample_kernel(self, ctx: Context) -> bool:
        """Pull the kernel's snapshot (service ``orrery.kernel``) into the kernel metrics.

        Returns whether there was one: without the service (or with instrumentation
        off) the plugin just has no kernel metrics. Never raises: a scrape or an
        evaluation must not fail because the kernel's figures could not be read.
        """
        if self._sampler is None:
            return False
        try:
            snapshot = ctx.services.get(KERNEL_SERVICE).snapshot()
        except ServiceNotFound:
            return False
        except Exception:
            ctx.log.exception("reading the kernel's figures (service orrery.kernel) failed")
            return False
        try:
            self._sampler.sample(snapshot)
        except Exception:
            ctx.log.exception("turning the kernel's figures into metrics failed")
            return False
        return True

    async def evaluate_once(
        self, ctx: Context, now: float | None = None, *, force: bool = True
    ) -> list[AlertNotice]:
        """Sample the kernel, scrape and evaluate now (or only what is due), then
        publish alert notices."""
        assert self.engine is not None, "the plugin is not started"
        self.sample_kernel(ctx)
        notices = self.engine.tick(now, force=force)
        for notice in notices:
            await ctx.bus.publish(notice.topic, notice.data, key=notice.fingerprint)
        return notices

    async def _evaluate_forever(self, ctx: Context, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.evaluate_once(ctx, force=False)
            except Exception:  # one bad tick must not end alerting for good
                ctx.log.exception("metrics evaluation failed; retrying next interval")
            assert self.engine is not None
            delay = max(0.0, self.engine.next_due() - self._clock())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay or 0.001)
