"""MetricsPlugin: wires the metrics machinery to the kernel; the hooks only connect parts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from orrery.sdk import Context, Plugin, ServiceKey, hookimpl

from ._api import Commands
from ._config import MetricsConfig
from ._dashboards import DashboardBook
from ._engine import MetricsEngine
from ._evaluation import Evaluator, KernelFigures
from ._export import Exposition, prometheus_exposition
from ._instrument import BUS_PATTERN, KernelInstruments
from ._kernel_stats import KernelSampler
from ._registry import MetricsRegistry
from ._service import MetricsService

__all__ = [
    "METRICS",
    "METRICS_ENGINE",
    "METRICS_EXPOSITION",
    "METRICS_SERVICE",
    "MetricsPlugin",
]

#: `orrery_handover` key of the live registry (other plugins hold its metric objects).
_LIVE_REGISTRY = "registry"

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

    def __init__(self) -> None:
        self.engine: MetricsEngine | None = None
        self.evaluator: Evaluator | None = None
        self._loop: Awaitable[None] | None = None

    @hookimpl
    async def orrery_start(self, ctx: Context[MetricsConfig]) -> None:
        """Build the engine, provide the services, mount the API, start the loop."""
        engine = self.engine = self._engine(ctx)
        figures = None
        if ctx.config.instrument_kernel:
            figures = KernelFigures(ctx.services, KernelSampler(engine.registry), ctx.log)
            # Synchronous on purpose: the bus calls an idle sync handler in place.
            instruments = KernelInstruments(engine.registry, own_source=f"/{ctx.name}")
            ctx.bus.subscribe(BUS_PATTERN, instruments.handle)
        evaluator = self.evaluator = Evaluator(engine, ctx.bus, ctx.clock, ctx.log, figures)
        expose = prometheus_exposition(engine.registry)

        def scrape() -> tuple[str, bytes]:
            evaluator.sample_kernel()  # fresh kernel figures in every scrape
            return expose()

        dashboards = DashboardBook(ctx.store, ctx.config.dashboards)
        unreadable = await dashboards.load()
        if unreadable:
            ctx.log.warning("saved dashboards not valid, ignored: %s", ", ".join(unreadable))
        service = MetricsService(engine, dashboards, scrape)
        ctx.services.provide(METRICS, engine.registry)
        ctx.services.provide(METRICS_ENGINE, engine)
        ctx.services.provide(METRICS_EXPOSITION, scrape)
        ctx.services.provide(METRICS_SERVICE, service)
        commands = Commands(service)
        commands.subscribe(ctx.bus)
        commands.mount(ctx.http)
        self._loop = ctx.spawn(evaluator.run(), name="metrics-evaluation")

    @staticmethod
    def _engine(ctx: Context[MetricsConfig]) -> MetricsEngine:
        """A new engine, serving the previous version's registry when it can (objects
        other plugins hold keep counting) and its values, series and alerts."""
        live = ctx.handed_over.get(_LIVE_REGISTRY)
        adopted = live is not None and MetricsEngine.can_adopt(live, ctx.config, ctx.clock)
        if live is not None and not adopted:
            ctx.log.warning(
                "metrics reloaded with another registry (new code, clock or accuracy): values "
                "were copied, but metric objects other plugins hold keep updating the old "
                "one until they declare them again"
            )
        registry = live if adopted and isinstance(live, MetricsRegistry) else None
        engine = MetricsEngine(ctx.config, ctx.clock, registry=registry)
        skipped = engine.restore(ctx.restored or {}, values=registry is None)
        if skipped:
            ctx.log.warning("metrics not restored after reload: %s", ", ".join(skipped))
        return engine

    @hookimpl
    async def orrery_stop(self, ctx: Context[MetricsConfig]) -> None:
        """Stop the evaluation loop; the kernel releases subscriptions and routes."""
        if self.evaluator is not None:
            self.evaluator.stop()
        if self._loop is not None:
            # The loop exits at its next wait; if the kernel already cancelled it, fine.
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        self._loop = self.evaluator = None

    @hookimpl
    async def orrery_snapshot(self, ctx: Context[MetricsConfig]) -> dict[str, Any]:
        """Metric values, time series and alert states for the next version, as
        JSON-able data (alerts that fire stay firing, not announced again)."""
        return {} if self.engine is None else self.engine.snapshot()

    @hookimpl
    async def orrery_handover(self, ctx: Context[MetricsConfig]) -> dict[str, Any]:
        """The live registry: plugins hold its metric objects, and the next version
        keeps serving those same objects (no update between the two is lost)."""
        return {} if self.engine is None else {_LIVE_REGISTRY: self.engine.registry}

    @hookimpl
    async def orrery_health(self, ctx: Context[MetricsConfig]) -> dict[str, Any]:
        """Counts of metrics, series and alerts, and when the loop last ran."""
        if self.engine is None:
            return {"ok": False, "reason": "not started"}
        return self.engine.health()
