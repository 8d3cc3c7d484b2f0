"""The evaluation loop: on the plugin's clock, sample the kernel's figures, scrape and
evaluate what is due, and publish alert notices on the bus.

It takes SDK protocols (Bus, Clock, Services), never the Context, so a test can drive
it with a `orrery.sdk.testing.ManualClock` through the real kernel: advancing the clock
wakes the loop, which evaluates whatever became due.
"""

from __future__ import annotations

import asyncio
import logging

from orrery.sdk import Bus, Clock, ServiceNotFound, Services

from ._alerts import AlertNotice
from ._engine import MetricsEngine
from ._kernel_stats import KERNEL_SERVICE, KernelSampler

__all__ = ["Evaluator", "KernelFigures"]


class KernelFigures:
    """Pulls the kernel's snapshot (service ``orrery.kernel``) into the kernel metrics."""

    def __init__(self, services: Services, sampler: KernelSampler, log: logging.Logger) -> None:
        self._services = services
        self._sampler = sampler
        self._log = log

    def sample(self) -> bool:
        """Whether there was a snapshot to sample. Never raises: a scrape or an
        evaluation must not fail because the kernel's figures could not be read."""
        try:
            snapshot = self._services.get(KERNEL_SERVICE).snapshot()
        except ServiceNotFound:
            return False
        except Exception:
            self._log.exception("reading the kernel's figures (service orrery.kernel) failed")
            return False
        try:
            self._sampler.sample(snapshot)
        except Exception:
            self._log.exception("turning the kernel's figures into metrics failed")
            return False
        return True


class Evaluator:
    """Runs `MetricsEngine.tick` whenever something is due and publishes its notices."""

    def __init__(
        self,
        engine: MetricsEngine,
        bus: Bus,
        clock: Clock,
        log: logging.Logger,
        kernel: KernelFigures | None = None,
    ) -> None:
        self.engine = engine
        self._bus = bus
        self._clock = clock
        self._log = log
        self._kernel = kernel
        self._stop = asyncio.Event()
        # Separate from _stop: a ManualClock sets the events it wakes.
        self._wake = asyncio.Event()

    def sample_kernel(self) -> bool:
        """Refresh the kernel metrics now (also before each Prometheus scrape)."""
        return self._kernel.sample() if self._kernel is not None else False

    async def evaluate_once(
        self, now: float | None = None, *, force: bool = True
    ) -> list[AlertNotice]:
        """Sample the kernel, scrape and evaluate now (or only what is due), then publish
        the alert notices."""
        self.sample_kernel()
        notices = self.engine.tick(now, force=force)
        for notice in notices:
            await self._bus.publish(notice.topic, notice.data, key=notice.fingerprint)
        return notices

    async def run(self) -> None:
        """Evaluate until `stop`; one failing tick is logged and the next one runs."""
        while not self._stop.is_set():
            try:
                await self.evaluate_once(force=False)
            except Exception:  # one bad tick must not end alerting for good
                self._log.exception("metrics evaluation failed; retrying next interval")
            self._wake.clear()
            if self._stop.is_set():
                break
            await self._clock.wait(self._wake, self.engine.next_due())

    def stop(self) -> None:
        """Make `run` return at its next wait."""
        self._stop.set()
        self._wake.set()
