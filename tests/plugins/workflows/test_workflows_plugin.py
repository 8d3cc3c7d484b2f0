"""The plugin in a real in-process kernel (fixtures from orrery.sdk.testing)."""

from __future__ import annotations

from pathlib import Path

from orrery.sdk.testing import HarnessFactory, ManualClock
from orrery_workflows import WORKFLOWS, WorkflowsPlugin

START = 1_700_000_000.0


async def test_pings_are_answered_and_counted_on_the_bus(orrery_kernel: HarnessFactory) -> None:
    clock = ManualClock(start=START)
    async with orrery_kernel(WorkflowsPlugin, clock=clock) as k:
        k.assert_state("workflows", "active")
        first = await k.request("workflows.ping", {"who": "ada"})
        clock.advance(5)
        await k.request("workflows.ping", {})
        stats = await k.request("workflows.stats", {})
    assert first == {"reply": "pong, ada", "count": 1, "at": START}
    assert stats == {"count": 2, "last": START + 5}


async def test_the_http_routes_serve_the_same_commands(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(WorkflowsPlugin) as k:
        ping = await k.http("POST", "/v1/plugins/workflows/ping", json={"who": "ada"})
        stats = await k.http("GET", "/v1/plugins/workflows/stats")
        bad = await k.http("POST", "/v1/plugins/workflows/ping", json={"who": ""})
    assert ping.status == 200 and ping.json()["reply"] == "pong, ada"
    assert stats.json()["count"] == 1
    assert bad.status == 400 and "who" in bad.json()["error"]


async def test_other_plugins_use_the_service(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(WorkflowsPlugin) as k:
        service = k.service(WORKFLOWS)
        await service.ping("grace")
        assert service.stats()["count"] == 1
        assert await service.reset() == {"count": 1}


async def test_the_count_survives_a_restart(orrery_kernel: HarnessFactory, tmp_path: Path) -> None:
    state = tmp_path / "state"
    async with orrery_kernel(WorkflowsPlugin, state_dir=state) as k:
        await k.request("workflows.ping", {})
    async with orrery_kernel(WorkflowsPlugin, state_dir=state) as k:
        assert (await k.request("workflows.ping", {}))["count"] == 2


async def test_the_reply_is_configurable(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(WorkflowsPlugin, config={"reply": "ahoy"}) as k:
        assert (await k.request("workflows.ping", {}))["reply"] == "ahoy"


async def test_bad_config_fails_the_plugin_with_the_field(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(WorkflowsPlugin, config={"reply": ""}) as k:
        k.assert_state("workflows", "failed")
        assert "plugins.workflows.reply" in k.plugins["workflows"].error
    async with orrery_kernel(WorkflowsPlugin, config={"replly": "x"}) as k:
        k.assert_state("workflows", "failed")
        assert "replly" in k.plugins["workflows"].error
