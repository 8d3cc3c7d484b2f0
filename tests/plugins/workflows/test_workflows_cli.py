"""``orrery workflows ...`` against a real daemon, and the §11 HTTP routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from orrery.kernel import Kernel
from orrery.kernel.daemon import Daemon
from orrery.sdk.testing import HarnessFactory
from orrery_workflows import WORKFLOWS, WorkflowsPlugin, WorkflowsService
from orrery_workflows.cli import app
from typer.testing import CliRunner

from .conftest import Probe, ProbePlugin
from .test_workflows_approvals import ONBOARDING

BASE = "/v1/plugins/workflows"


@pytest.fixture
async def daemon(tmp_path: Path, probe: Probe) -> AsyncIterator[tuple[Path, WorkflowsService]]:
    state_dir = tmp_path / "state"
    kernel = Kernel(
        state_dir=state_dir,
        plugins=[WorkflowsPlugin, ProbePlugin],
        entry_points=False,
        watch=False,
        env={},
        config={"plugins": {"workflows": {"poll_interval": 0.05}}},
    )
    d = Daemon(kernel, port=0, grace_period=2.0)
    await d.start()
    try:
        yield state_dir, kernel.manager.services.get(WORKFLOWS)
    finally:
        await d.stop()


async def wf_cli(state_dir: Path | None, *args: str) -> Any:
    """Run the CLI in a thread (it blocks on HTTP while the daemon runs on this loop)."""
    extra = ["--state-dir", str(state_dir)] if state_dir is not None else []
    return await asyncio.to_thread(CliRunner().invoke, app, [*args, *extra], catch_exceptions=False)


async def test_add_run_approve_status_from_the_command_line(
    daemon: tuple[Path, WorkflowsService], tmp_path: Path, probe: Probe
) -> None:
    state_dir, _ = daemon
    file = tmp_path / "onboarding.yaml"
    file.write_text(ONBOARDING)
    added = await wf_cli(state_dir, "add", str(file), "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output) == {"name": "onboarding", "version": 1}
    listed = json.loads((await wf_cli(state_dir, "ls", "--json")).output)
    assert [w["name"] for w in listed] == ["onboarding"]
    shown = await wf_cli(state_dir, "show", "onboarding")
    assert "approve: approval" in shown.output and "needs create_account" in shown.output
    started = await wf_cli(
        state_dir,
        "run",
        "onboarding",
        "--input",
        '{"customer": {"name": "ada"}}',
        "--wait",
        "--json",
    )
    assert started.exit_code == 0, started.output
    run = json.loads(started.output)
    assert run["status"] == "waiting"
    pending = json.loads((await wf_cli(state_dir, "approvals", "--json")).output)
    assert [(p["run"], p["step"]) for p in pending] == [(run["id"], "approve")]
    approved = await wf_cli(state_dir, "approve", run["id"], "approve", "--comment", "fine")
    assert approved.exit_code == 0, approved.output
    _, service = daemon
    done = await service.wait(run["id"])
    assert done["status"] == "completed"
    assert done["steps"]["approve"]["output"]["comment"] == "fine"
    status = await wf_cli(state_dir, "status", run["id"])
    assert f"{run['id']} onboarding v1: completed" in status.output
    rows = json.loads((await wf_cli(state_dir, "runs", "--status", "completed", "--json")).output)
    assert [r["id"] for r in rows] == [run["id"]]


async def test_deny_and_cancel_from_the_command_line(daemon: tuple[Path, WorkflowsService]) -> None:
    state_dir, service = daemon
    await service.put_workflow(ONBOARDING)
    first = await service.start("onboarding", {"customer": {"name": "a"}})
    second = await service.start("onboarding", {"customer": {"name": "b"}})
    await service.wait(first)
    await service.wait(second)
    denied = await wf_cli(state_dir, "deny", first, "approve", "--json")
    assert denied.exit_code == 0, denied.output
    assert (await service.wait(first))["status"] == "compensated"
    cancelled = json.loads((await wf_cli(state_dir, "cancel", second, "--json")).output)
    assert cancelled["status"] == "cancelled"
    again = await wf_cli(state_dir, "cancel", second)
    assert again.exit_code == 1 and "already cancelled" in again.output


async def test_validate_names_the_line_and_reason(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(ONBOARDING)
    bad.write_text(ONBOARDING.replace("needs: [approve]", "needs: [aprove]"))
    ok = await wf_cli(None, "validate", str(good))
    assert ok.exit_code == 0 and "ok (onboarding, 3 steps)" in ok.output
    refused = await wf_cli(None, "validate", str(bad), "--json")
    assert refused.exit_code == 1
    answer = json.loads(refused.output)
    assert answer["line"] == 12 and "unknown step 'aprove'" in answer["reason"]


async def test_no_daemon_is_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    for name in ("ORRERY_URL", "ORRERY_TOKEN", "ORRERY_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = await wf_cli(None, "runs")
    assert result.exit_code == 2
    assert result.output.startswith("error: no running daemon found")


async def test_the_http_routes_of_the_design(orrery_kernel: HarnessFactory, probe: Probe) -> None:
    config = {"plugins": {"workflows": {"poll_interval": 0.05}}}
    async with orrery_kernel(WorkflowsPlugin, ProbePlugin, config=config) as k:
        put = await k.http("PUT", f"{BASE}/workflows/onboarding", json={"yaml": ONBOARDING})
        assert put.status == 200 and put.json() == {"name": "onboarding", "version": 1}
        got = await k.http("GET", f"{BASE}/workflows/onboarding")
        assert got.json()["steps"][0]["id"] == "create_account"
        bad = await k.http("PUT", f"{BASE}/workflows/x", json={"yaml": "name: x\nsteps: []\n"})
        assert bad.status == 400 and ":2: steps" in bad.json()["error"]
        assert (await k.http("GET", f"{BASE}/workflows/nope")).status == 404
        started = await k.http(
            "POST", f"{BASE}/runs", json={"workflow": "onboarding", "input": {"customer": {}}}
        )
        run_id = started.json()["id"]
        await k.service(WORKFLOWS).wait(run_id)
        doc = (await k.http("GET", f"{BASE}/runs/{run_id}")).json()
        assert set(doc) >= {"id", "workflow", "status", "steps", "output", "error"}
        assert doc["status"] == "waiting"
        assert doc["steps"]["create_account"]["status"] == "completed"
        [pending] = (await k.http("GET", f"{BASE}/approvals")).json()
        assert pending["step"] == "approve"
        decided = await k.http(
            "POST",
            f"{BASE}/runs/{run_id}/approvals/approve",
            json={"approved": True, "by": "ops", "comment": "ok"},
        )
        assert decided.status == 200
        again = await k.http(
            "POST", f"{BASE}/runs/{run_id}/approvals/approve", json={"approved": True}
        )
        assert again.status == 409
        done = await k.service(WORKFLOWS).wait(run_id)
        assert done["status"] == "completed"
        assert (await k.http("POST", f"{BASE}/runs/{run_id}/cancel", json={})).status == 409
        assert (await k.http("GET", f"{BASE}/runs/nope")).status == 404
        unknown = await k.http("POST", f"{BASE}/runs", json={"workflow": "nope"})
        assert unknown.status == 404
        listed = (await k.http("GET", f"{BASE}/runs", query={"status": "completed"})).json()
        assert [r["id"] for r in listed] == [run_id]
        over_bus = await k.request("workflows.get", {"id": run_id})
        assert over_bus["status"] == "completed"
        assert "error" in await k.request("workflows.get", {"id": "nope"})


async def test_an_http_decision_without_by_is_made_by_the_caller(
    orrery_kernel: HarnessFactory, probe: Probe
) -> None:
    config = {"plugins": {"workflows": {"poll_interval": 0.05}}}
    async with orrery_kernel(WorkflowsPlugin, ProbePlugin, config=config) as k:
        wf = k.service(WORKFLOWS)
        await wf.put_workflow(ONBOARDING)
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        await wf.wait(run_id)
        answer = await k.http(
            "POST", f"{BASE}/runs/{run_id}/approvals/approve", json={"approved": False}
        )
        assert answer.status == 200
        run = await wf.wait(run_id)
    decision = run["steps"]["approve"]["decision"]
    assert decision["by"] and decision["approved"] is False


async def test_the_routes_are_in_the_openapi_document(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(WorkflowsPlugin) as k:
        doc = (await k.http("GET", "/v1/openapi.json")).json()
    paths = doc["paths"]
    for path, method in [
        (f"{BASE}/runs", "post"),
        (f"{BASE}/runs/{{id}}", "get"),
        (f"{BASE}/approvals", "get"),
        (f"{BASE}/runs/{{id}}/approvals/{{step}}", "post"),
        (f"{BASE}/runs/{{id}}/cancel", "post"),
        (f"{BASE}/workflows/{{name}}", "put"),
    ]:
        assert method in paths.get(path, {}), (path, sorted(p for p in paths if "workflows" in p))
