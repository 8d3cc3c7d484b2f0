"""The kernel's introspection service: HTTP statistics and on-demand snapshots."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from orrery.kernel import Kernel
from orrery.kernel._introspection import (
    HTTP_BUCKETS,
    KERNEL_SERVICE,
    KERNEL_SERVICE_OWNER,
    OVERFLOW_ROUTE,
    HttpStats,
    KernelIntrospection,
    provide_introspection,
)
from orrery.sdk import Context, Event, Plugin, hookimpl


class Blocker(Plugin):
    """Handles ``work.>`` one event at a time, each until the test releases it."""

    name = "blocker"
    started: asyncio.Event
    release: asyncio.Event

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        async def handle(event: Event) -> None:
            Blocker.started.set()
            await Blocker.release.wait()

        ctx.bus.subscribe("work.>", handle)


@pytest.fixture
async def kernel(tmp_path: Path) -> AsyncIterator[Kernel]:
    Blocker.started = asyncio.Event()
    Blocker.release = asyncio.Event()
    k = Kernel(
        plugins=[Blocker], state_dir=tmp_path / "state", entry_points=False, env={}, watch=False
    )
    async with k:
        try:
            yield k
        finally:
            Blocker.release.set()


def test_http_stats_count_statuses_and_bucket_latencies() -> None:
    stats = HttpStats()
    stats.record("GET", "/v1/plugins/{name}", 200, 0.003)
    stats.record("GET", "/v1/plugins/{name}", 200, 0.005)  # on a bound: that bucket (le)
    stats.record("GET", "/v1/plugins/{name}", 404, 30.0)  # beyond the last bound: +Inf
    stats.record("POST", "/v1/events", 202, 0.2)
    snap = stats.snapshot()
    assert snap["buckets"] == list(HTTP_BUCKETS)
    get, post = snap["routes"]
    assert (get["method"], get["route"]) == ("GET", "/v1/plugins/{name}")
    assert get["requests"] == {"200": 2, "404": 1}
    assert get["count"] == 3 and get["sum"] == pytest.approx(30.008) and get["max"] == 30.0
    assert len(get["cumulative"]) == len(HTTP_BUCKETS) + 1
    assert get["cumulative"][0] == 2  # <= 0.005
    assert get["cumulative"][-2] == 2 and get["cumulative"][-1] == 3  # <= 10, +Inf
    assert post["requests"] == {"202": 1}
    assert post["cumulative"][HTTP_BUCKETS.index(0.25)] == 1
    json.dumps(snap)  # plain data


def test_http_stats_memory_is_bounded_by_routes_not_requests() -> None:
    stats = HttpStats(max_routes=3)
    for i in range(1000):
        stats.record("GET", f"/route/{i % 10}", 200, 0.001)
    assert len(stats) <= 3 + 1  # the routes, plus one <other> per method
    routes = {r["route"]: r for r in stats.snapshot()["routes"]}
    assert routes[OVERFLOW_ROUTE]["count"] == stats.overflowed == 700
    assert sum(r["count"] for r in routes.values()) == 1000


def test_a_clock_step_counts_the_request_but_not_the_duration() -> None:
    stats = HttpStats()
    stats.record("GET", "/x", 200, -0.5)
    stats.record("GET", "/x", 200, math.nan)
    (route,) = stats.snapshot()["routes"]
    assert route["requests"] == {"200": 2} and route["count"] == 0


def test_max_routes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_routes"):
        HttpStats(max_routes=0)


async def test_snapshot_reports_plugins_bus_and_node(kernel: Kernel) -> None:
    snap = KernelIntrospection(kernel).snapshot()
    assert snap["node_id"] == kernel.node_id
    assert snap["bus_backend"] == "memory"
    assert snap["plugins"]["total"] == 1
    assert snap["plugins"]["by_state"] == {"active": 1}
    (item,) = snap["plugins"]["items"]
    assert item == {
        "name": "blocker",
        "state": "active",
        "version": item["version"],
        "sandbox": False,
        "restarts": 0,
    }
    assert snap["sandbox_restarts"] == {}  # only sandboxed plugins are listed
    assert snap["bus"]["subscriptions"] >= 1
    assert snap["http"]["routes"] == []  # no daemon in front of this kernel
    json.dumps(snap)


async def test_queue_depth_is_counted_per_subscribing_plugin(kernel: Kernel) -> None:
    introspection = KernelIntrospection(kernel)
    assert introspection.queue_depth().get("blocker") == 0
    await kernel.bus.publish("work.a", {})
    await Blocker.started.wait()  # the first event is being handled, not queued
    await kernel.bus.publish("work.b", {})
    await kernel.bus.publish("work.c", {})
    assert introspection.queue_depth()["blocker"] == 2
    assert introspection.snapshot()["bus"]["queue_depth"]["blocker"] == 2
    Blocker.release.set()
    assert await kernel.quiesce(10)
    assert introspection.queue_depth()["blocker"] == 0


async def test_sandbox_restarts_come_from_the_plugin_table(tmp_path: Path) -> None:
    # A real sandboxed plugin whose worker is killed once: the supervisor restarts it and
    # the plugin table (and so the snapshot) counts the restart.
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "boxed.py").write_text(
        "from orrery.sdk import Plugin\nclass Boxed(Plugin):\n    sandbox = True\n"
    )
    async with Kernel(
        plugins_dirs=[folder], state_dir=tmp_path / "s", entry_points=False, env={}, watch=False
    ) as k:
        host = k.manager.runtime("boxed").instance
        assert host is not None and k.plugins["boxed"].sandbox
        host.kill("killed by the test")  # type: ignore[attr-defined]
        async with asyncio.timeout(30):
            await host.wait_state("active", min_restarts=1)  # type: ignore[attr-defined]
        snap = KernelIntrospection(k).snapshot()
        assert snap["sandbox_restarts"] == {"boxed": 1}
        assert snap["plugins"]["items"][0]["restarts"] == 1


async def test_provide_registers_one_service_plugins_can_reach(kernel: Kernel) -> None:
    first = provide_introspection(kernel)
    assert provide_introspection(kernel) is first  # idempotent: kernel and daemon share it
    assert kernel.services.get(KERNEL_SERVICE) is first
    assert kernel.services.provider(KERNEL_SERVICE) == KERNEL_SERVICE_OWNER
    first.http.record("GET", "/v1/status", 200, 0.001)
    seen: Any = kernel.services.get(KERNEL_SERVICE).snapshot()
    assert seen["http"]["routes"][0]["route"] == "/v1/status"


async def test_snapshot_of_a_stopped_kernel_is_empty_not_an_error(tmp_path: Path) -> None:
    k = Kernel(state_dir=tmp_path / "s", entry_points=False, env={}, watch=False)
    snap = KernelIntrospection(k).snapshot()
    assert snap["plugins"]["total"] == 0 and snap["bus"]["queue_depth"] == {}
