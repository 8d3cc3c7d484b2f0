"""Approval steps: waiting, the requested event, decisions resume, timeouts with
on_timeout approve | deny | escalate; cancel; resume after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from orrery.sdk.testing import ManualClock
from orrery_workflows import WORKFLOWS, InvalidDecision, RunFinished

from .conftest import Probe, Started

ONBOARDING = """\
name: onboarding
inputs: {customer: {type: object}}
steps:
  - id: create_account
    call: svc.accounts_create
    with: {name: "${{ inputs.customer.name }}"}
    compensate: {call: svc.accounts_delete, with: {id: "${{ steps.create_account.output.id }}"}}
  - id: approve
    needs: [create_account]
    approval: {approvers: [ops], timeout: 3600, on_timeout: deny}
  - id: notify
    needs: [approve]
    when: "${{ steps.approve.output.approved }}"
    call: svc.notify
    with: {note: "${{ steps.approve.output.data.note }}"}
"""


async def test_an_approval_waits_then_the_decision_resumes_the_run(
    workflows_kernel: Started, probe: Probe
) -> None:
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(ONBOARDING)
        requested = k.expect("workflow.approval.requested")
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        [event] = await requested.wait()
        run = await wf.wait(run_id)
        assert run["status"] == "waiting"
        assert event.data["step"] == "approve" and event.data["approvers"] == ["ops"]
        [pending] = await wf.approvals()
        assert pending["run"] == run_id and pending["step"] == "approve"
        assert pending["deadline"] == 1_700_000_000.0 + 3600
        with pytest.raises(InvalidDecision):
            await wf.decide(run_id, "notify", True, by="grace")
        await wf.decide(run_id, "approve", True, by="grace", comment="ok", data={"note": "hi"})
        run = await wf.wait(run_id)
        assert await wf.approvals() == []
        with pytest.raises(RunFinished):
            await wf.decide(run_id, "approve", False, by="grace")
    assert run["status"] == "completed"
    assert run["steps"]["approve"]["output"] == {
        "approved": True,
        "by": "grace",
        "comment": "ok",
        "data": {"note": "hi"},
    }
    assert [c[0] for c in probe.calls] == ["svc.accounts_create", "svc.notify"]
    assert probe.calls[-1][3] == {"note": "hi"}


async def test_a_denial_compensates_what_completed(workflows_kernel: Started, probe: Probe) -> None:
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(ONBOARDING)
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        await wf.wait(run_id)
        await wf.decide(run_id, "approve", False, by="grace")
        run = await wf.wait(run_id)
    assert run["status"] == "compensated" and "denied by grace" in run["error"]
    assert [c[0] for c in probe.calls] == ["svc.accounts_create", "svc.accounts_delete"]


@pytest.mark.parametrize(
    ("on_timeout", "status"), [("approve", "completed"), ("deny", "compensated")]
)
async def test_an_approval_timeout_decides_as_configured(
    workflows_kernel: Started, clock: ManualClock, on_timeout: str, status: str
) -> None:
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(ONBOARDING.replace("on_timeout: deny", f"on_timeout: {on_timeout}"))
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        assert (await wf.wait(run_id))["status"] == "waiting"
        decided = k.expect("workflow.approval.decided")
        clock.advance(3599)
        assert (await wf.run(run_id))["status"] == "waiting"
        clock.advance(1)
        [event] = await decided.wait()
        run = await wf.wait(run_id)
    assert event.data["by"] == "timeout"
    assert run["status"] == status


async def test_an_escalated_approval_asks_the_second_group(
    workflows_kernel: Started, clock: ManualClock
) -> None:
    text = ONBOARDING.replace(
        "approval: {approvers: [ops], timeout: 3600, on_timeout: deny}",
        "approval: {approvers: [ops], timeout: 60, on_timeout: escalate,\n"
        "               escalate: {approvers: [cto], timeout: 60, on_timeout: approve}}",
    )
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(text)
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        await wf.wait(run_id)
        escalated = k.expect("workflow.approval.requested", where=lambda e: e.data["stage"] == 1)
        clock.advance(60)
        [event] = await escalated.wait()
        assert event.data["approvers"] == ["cto"]
        [pending] = await wf.approvals()
        assert pending["approvers"] == ["cto"] and pending["stage"] == 1
        finished = k.expect("workflow.run.completed")
        clock.advance(60)
        await finished.wait()
        run = await wf.run(run_id)
    assert run["status"] == "completed"


async def test_cancel_stops_a_run(workflows_kernel: Started, probe: Probe) -> None:
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(ONBOARDING)
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        await wf.wait(run_id)
        cancelled = k.expect("workflow.run.cancelled")
        run = await wf.cancel(run_id, by="grace")
        await cancelled.wait()
        assert (await wf.run(run_id))["status"] == "cancelled"
        assert await wf.approvals() == []
        with pytest.raises(RunFinished):
            await wf.cancel(run_id)
    assert run["status"] == "cancelled" and "grace" in run["error"]


async def test_a_waiting_run_survives_a_restart_without_rerunning_completed_steps(
    workflows_kernel: Started, probe: Probe, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with workflows_kernel(state_dir=state) as (k, wf):
        await wf.put_workflow(ONBOARDING)
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        assert (await wf.wait(run_id))["status"] == "waiting"
    async with workflows_kernel(state_dir=state) as (k, wf):
        [pending] = await wf.approvals()
        assert pending["run"] == run_id
        await wf.decide(run_id, "approve", True, by="grace")
        run = await wf.wait(run_id)
    assert run["status"] == "completed"
    assert probe.effects[f"{run_id}:create_account"] == 1
    assert [c[0] for c in probe.calls] == ["svc.accounts_create", "svc.notify"]


async def test_an_in_flight_step_runs_again_after_a_restart_with_the_same_key(
    workflows_kernel: Started, probe: Probe
) -> None:
    probe.hang.add("svc.notify")
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(ONBOARDING)
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        await wf.wait(run_id)
        started = k.expect("workflow.step.started", where=lambda e: e.data["step"] == "notify")
        await wf.decide(run_id, "approve", True, by="grace")
        await started.wait()
        await k.kernel.disable("workflows")  # stops while the step is in flight
        probe.hang.clear()
        probe.release.set()  # the first reply finds nobody waiting for it
        await k.kernel.enable("workflows")
        run = await k.service(WORKFLOWS).wait(run_id)
    keys = [c[1] for c in probe.calls if c[0] == "svc.notify"]
    assert run["status"] == "completed"
    assert len(keys) == 2 and set(keys) == {f"{run_id}:notify"}
    assert probe.effects[f"{run_id}:create_account"] == 1


async def test_a_run_keeps_the_version_it_started_with(
    workflows_kernel: Started, probe: Probe
) -> None:
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(ONBOARDING)
        run_id = await wf.start("onboarding", {"customer": {"name": "ada"}})
        await wf.wait(run_id)
        v2 = await wf.put_workflow(ONBOARDING.replace("svc.notify", "svc.notify_v2"))
        assert v2 == {"name": "onboarding", "version": 2}
        assert await wf.put_workflow(ONBOARDING.replace("svc.notify", "svc.notify_v2")) == v2
        await wf.decide(run_id, "approve", True, by="grace")
        old = await wf.wait(run_id)
        new_id = await wf.start("onboarding", {"customer": {"name": "bob"}})
        await wf.decide(new_id, "approve", True, by="grace") if (await wf.wait(new_id))[
            "status"
        ] == "waiting" else None
        new = await wf.wait(new_id)
    assert old["version"] == 1 and new["version"] == 2
    assert [c[0] for c in probe.calls if c[0].startswith("svc.notify")] == [
        "svc.notify",
        "svc.notify_v2",
    ]


async def test_workflow_files_load_from_dirs_and_a_bad_edit_keeps_the_old_version(
    workflows_kernel: Started, tmp_path: Path
) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "onboarding.yaml").write_text(ONBOARDING)
    async with workflows_kernel(dirs=[str(folder)]) as (k, wf):
        assert [w["name"] for w in wf.workflows()] == ["onboarding"]
        health = (await k.kernel.health())["workflows"]
        assert health["ok"] is True
        (folder / "onboarding.yaml").write_text(
            ONBOARDING.replace("needs: [approve]", "needs: [x]")
        )
        (folder / "other.yaml").write_text("name: other\nsteps:\n  - {id: a, call: svc.a}\n")
        # the sweeper re-reads changed files each poll interval (real time)
        for _ in range(200):
            if any(w["name"] == "other" for w in wf.workflows()):
                break
            await asyncio.sleep(0.02)
        health = (await k.kernel.health())["workflows"]
        assert wf.workflow("onboarding")["version"] == 1
        assert health["ok"] is False
        [error] = health["file_errors"].values()
        assert ":12: step 'notify' needs unknown step 'x'" in error
