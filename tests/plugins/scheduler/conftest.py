"""Fixtures for the scheduler plugin tests: a manual clock and a started scheduler."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from orrery.sdk.testing import ManualClock
from orrery_scheduler import SCHEDULER, Scheduler, SchedulerPlugin

PG_DSN = os.environ.get("ORRERY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def clock() -> ManualClock:
    """A clock that only moves when the test says so."""
    return ManualClock()


Started = Callable[..., Any]


@pytest.fixture(params=["memory", "journal"])
def persistence(request: pytest.FixtureRequest) -> str:
    """Each scheduler test runs in memory mode and in journal mode (SQLite)."""
    return str(request.param)


@pytest.fixture
def scheduler_kernel(
    orrery_kernel: Any, clock: ManualClock, tmp_path: Path, persistence: str
) -> Started:
    """``async with scheduler_kernel(**config) as (k, scheduler)``: a real kernel with
    the scheduler on the manual clock (both persistence modes unless config says)."""

    @asynccontextmanager
    async def start(
        *, state_dir: Path | None = None, node_id: str | None = None, **config: Any
    ) -> AsyncIterator[tuple[Any, Scheduler]]:
        config.setdefault("persistence", persistence)
        config.setdefault("jitter", 0.0)
        options: dict[str, Any] = {}
        if state_dir is not None:
            options["state_dir"] = state_dir
        if node_id is not None:
            options["node_id"] = node_id
        async with orrery_kernel(SchedulerPlugin, config=config, clock=clock, **options) as k:
            k.assert_state("scheduler", "active")
            yield k, k.service(SCHEDULER)

    return start
