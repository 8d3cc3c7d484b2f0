"""Fixtures of the workflows tests: a real kernel with the workflows plugin and a probe
plugin that answers step calls and counts side effects by idempotency key."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from orrery.sdk import Context, Event, Plugin, hookimpl
from orrery.sdk.testing import HarnessFactory, ManualClock
from orrery_workflows import (
    ATTEMPT_HEADER,
    IDEMPOTENCY_HEADER,
    WORKFLOWS,
    WorkflowsPlugin,
    WorkflowsService,
)


class Probe:
    """What the probe's handlers do and saw; tests script failures and hangs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, Any]] = []  # topic, key, attempt, data
        self.effects: Counter[str] = Counter()  # successful side effects per key
        self.fail: dict[str, int] = {}  # topic -> failures still to answer
        self.always_fail: set[str] = set()
        self.hang: set[str] = set()
        self.release = asyncio.Event()
        self.order: list[str] = []

    async def handle(self, event: Event) -> Any:
        headers = event.headers or {}
        key = headers.get(IDEMPOTENCY_HEADER, "")
        attempt = int(headers.get(ATTEMPT_HEADER, "0"))
        self.calls.append((event.type, key, attempt, event.data))
        if event.type in self.hang:
            await self.release.wait()
        if event.type in self.always_fail:
            return {"error": f"{event.type} is broken"}
        if self.fail.get(event.type, 0) > 0:
            self.fail[event.type] -= 1
            return {"error": f"{event.type} failed this time"}
        if key not in self.effects:
            self.order.append(key)
        self.effects[key] += 1
        return {"ok": True, "topic": event.type, "echo": event.data, "id": f"id-{key}"}


PROBE = Probe()


class ProbePlugin(Plugin):
    """Answers every request under ``svc.>``."""

    name = "probe"

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        ctx.bus.subscribe("svc.>", PROBE.handle)


@pytest.fixture
def probe() -> Probe:
    global PROBE
    PROBE = Probe()
    return PROBE


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


Started = Callable[..., Any]


@pytest.fixture
def workflows_kernel(orrery_kernel: HarnessFactory, clock: ManualClock, probe: Probe) -> Started:
    """``async with workflows_kernel(**settings) as (k, service)``."""

    @asynccontextmanager
    async def start(**settings: Any) -> AsyncIterator[tuple[Any, WorkflowsService]]:
        options = {k: settings.pop(k) for k in ("state_dir", "node_id") if k in settings}
        settings.setdefault("poll_interval", 0.05)
        config = {"plugins": {"workflows": settings}}
        async with orrery_kernel(
            WorkflowsPlugin, ProbePlugin, config=config, clock=clock, **options
        ) as k:
            k.assert_state("workflows", "active")
            yield k, k.service(WORKFLOWS)

    return start
