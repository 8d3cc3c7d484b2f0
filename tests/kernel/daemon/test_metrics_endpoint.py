"""``GET /metrics`` (Prometheus) and the per-route HTTP statistics, on live daemons."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from orrery.kernel import Kernel
from orrery.kernel._introspection import KERNEL_SERVICE, UNMATCHED_ROUTE, KernelIntrospection
from orrery.kernel.daemon import Daemon
from orrery_metrics import MetricsPlugin
from prometheus_client.parser import text_string_to_metric_families

from .support import http_get, spawn_daemon

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Long intervals: every figure a test reads comes from a scrape, which samples the
# kernel on demand, so the background loop plays no part.
METRICS_CONFIG = {"metrics": {"scrape_interval": 3600, "evaluation_interval": 3600}}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
Started = Callable[..., AbstractAsyncContextManager[tuple[Daemon, aiohttp.ClientSession]]]


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def started(tmp_path: Path, daemon_plugins: Path) -> Started:
    """``async with started(metrics_open=False) as (daemon, api)``: a daemon running the
    metrics plugin beside the test plugins, and a client with its token."""

    @asynccontextmanager
    async def start(
        **options: Any,
    ) -> AsyncIterator[tuple[Daemon, aiohttp.ClientSession]]:
        kernel = Kernel(
            plugins=[MetricsPlugin],
            plugins_dirs=[daemon_plugins],
            state_dir=tmp_path / f"state-{len(list(tmp_path.iterdir()))}",
            entry_points=False,
            env={},
            config={"plugins": METRICS_CONFIG},
        )
        daemon = Daemon(kernel, port=0, grace_period=5.0, **options)
        await daemon.start()
        try:
            assert daemon.settings is not None
            headers = {"Authorization": f"Bearer {daemon.settings.token}"}
            async with aiohttp.ClientSession(base_url=daemon.url, headers=headers) as api:
                yield daemon, api
        finally:
            await daemon.stop()

    return start


async def scrape(session: aiohttp.ClientSession) -> Samples:
    async with session.get("/metrics") as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == PROMETHEUS_TYPE
        return parse(await response.text())


async def test_metrics_needs_the_token_and_serves_the_exposition(started: Started) -> None:
    async with started() as (daemon, api):
        async with aiohttp.ClientSession(base_url=daemon.url) as anonymous:
            async with anonymous.get("/metrics") as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with api.get("/v1/status") as response:
            assert response.status == 200
        samples = await scrape(api)
        assert samples[("orrery_plugins", (("state", "active"),))] == 4
        assert samples[("orrery_bus_queue_depth", (("owner", "metrics"),))] == 0
        status = (("method", "GET"), ("route", "/v1/status"), ("status", "200"))
        assert samples[("orrery_http_requests_total", status)] == 1
        latency = (("method", "GET"), ("route", "/v1/status"))
        assert samples[("orrery_http_request_seconds_count", latency)] == 1
        everything = tuple(sorted((*latency, ("le", "+Inf"))))
        assert samples[("orrery_http_request_seconds_bucket", everything)] == 1
        assert samples[("orrery_bus_events_total", (("prefix", "orrery"),))] >= 4


async def test_routes_are_recorded_by_template_not_by_path(started: Started) -> None:
    async with started() as (_, api):
        for item in ("1", "2", "3"):
            async with api.get(f"/v1/plugins/routes/items/{item}") as response:
                assert response.status == 200
        for path in ("/nowhere/a", "/nowhere/b"):
            async with api.get(path) as response:
                assert response.status == 404
        async with api.get("/v1/plugins/metrics/dashboards/ghost") as response:
            assert response.status == 404
        samples = await scrape(api)
    requests = {
        dict(labels)["route"]: value
        for (name, labels), value in samples.items()
        if name == "orrery_http_requests_total"
    }
    assert requests["/v1/plugins/routes/items/{id}"] == 3
    assert requests[UNMATCHED_ROUTE] == 2
    assert requests["/v1/plugins/metrics/dashboards/{name}"] == 1
    assert not any("/items/1" in route or "/nowhere" in route for route in requests)


async def test_metrics_open_serves_scrapers_without_a_token(started: Started) -> None:
    async with started(metrics_open=True) as (daemon, api):
        async with aiohttp.ClientSession(base_url=daemon.url) as anonymous:
            assert (await scrape(anonymous))[("orrery_plugins", (("state", "active"),))] == 4
            async with anonymous.get("/v1/status") as response:
                assert response.status == 401  # only the scrape is open
        async with api.get("/v1/openapi.json") as response:
            operation = (await response.json())["paths"]["/metrics"]["get"]
        assert operation["security"] == []


async def test_metrics_is_documented_in_openapi(started: Started) -> None:
    async with started() as (_, api):
        async with api.get("/v1/openapi.json") as response:
            operation = (await response.json())["paths"]["/metrics"]["get"]
    assert "security" not in operation  # the document-wide bearer requirement applies
    assert PROMETHEUS_TYPE in operation["responses"]["200"]["content"]
    assert {"401", "404"} <= set(operation["responses"])


async def test_without_the_metrics_plugin_it_is_404_with_a_hint(
    api: aiohttp.ClientSession,
) -> None:
    async with api.get("/metrics") as response:
        assert response.status == 404
        body = await response.json()
    assert "metrics plugin" in body["error"] and "orrery plugins" in body["error"]


async def test_a_disabled_metrics_plugin_stops_the_exposition(started: Started) -> None:
    async with started() as (_, api):
        async with api.post("/v1/plugins/metrics/disable") as response:
            assert response.status == 200
        async with api.get("/metrics") as response:
            assert response.status == 404
        async with api.post("/v1/plugins/metrics/enable") as response:
            assert response.status == 200
        await scrape(api)


async def test_the_daemon_shares_the_kernels_introspection_service(started: Started) -> None:
    async with started() as (daemon, api):
        async with api.get("/v1/health") as response:
            assert response.status == 200
        service = daemon.kernel.services.get(KERNEL_SERVICE)
        assert isinstance(service, KernelIntrospection)
        routes = {(r["method"], r["route"]) for r in service.snapshot()["http"]["routes"]}
        assert ("GET", "/v1/health") in routes


@pytest.mark.parametrize(("flags", "status"), [(("--metrics-open",), 404), ((), 401)])
def test_metrics_open_flag_of_the_daemon_command(
    tmp_path: Path, flags: tuple[str, ...], status: int
) -> None:
    # Without the metrics plugin an open /metrics is a 404 with a hint; a closed one is
    # 401 before anything else: the flag reaches the daemon from the command line.
    daemon = spawn_daemon(tmp_path / "state", *flags)
    try:
        daemon.wait_ready()
        assert http_get(daemon.url + "/metrics")[0] == status
    finally:
        assert daemon.stop() == 0
