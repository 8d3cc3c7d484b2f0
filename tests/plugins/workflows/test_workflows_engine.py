"""The engine through the real kernel: calls with idempotency headers, retries, timeouts,
parallel branches, when, compensation, approvals, cancel."""

from __future__ import annotations

from typing import Any

from orrery.sdk.testing import ManualClock

from .conftest import Probe, Started

CHAIN = """\
name: chain
inputs: {who: {type: string}}
steps:
  - id: a
    call: svc.a
    with: {who: "${{ inputs.who }}"}
  - id: b
    needs: [a]
    call: svc.b
    with: {from_a: "${{ steps.a.output.id }}"}
  - id: c
    needs: [b]
    call: svc.c
"""


async def test_a_chain_runs_in_order_with_idempotency_headers(
    workflows_kernel: Started, probe: Probe
) -> None:
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(CHAIN)
        done = k.expect("workflow.run.completed")
        run_id = await wf.start("chain", {"who": "ada"})
        await done.wait(timeout=10)
        run = await wf.run(run_id)
    assert run["status"] == "completed"
    assert [c[0] for c in probe.calls] == ["svc.a", "svc.b", "svc.c"]
    assert [c[1] for c in probe.calls] == [f"{run_id}:a", f"{run_id}:b", f"{run_id}:c"]
    assert all(c[2] == 1 for c in probe.calls)
    assert probe.calls[0][3] == {"who": "ada"}
    assert probe.calls[1][3] == {"from_a": f"id-{run_id}:a"}
    assert run["steps"]["c"] == {"status": "completed", "attempts": 1, "output": run["output"]["c"]}


async def run_until(k: Any, wf: Any, run_id: str, topic: str, timeout: float = 10) -> Any:
    return await wf.wait(run_id, timeout)


RETRY = """\
name: retry
steps:
  - id: a
    call: svc.flaky
    retry: {attempts: 3, backoff: 10, factor: 2}
"""


async def test_retries_back_off_on_the_clock_with_the_same_key(
    workflows_kernel: Started, probe: Probe, clock: ManualClock
) -> None:
    probe.fail["svc.flaky"] = 2
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(RETRY)
        first = k.expect("workflow.step.retrying")
        run_id = await wf.start("retry")
        [event] = await first.wait()
        assert event.data["retry_at"] == clock.now() + 10
        assert len(probe.calls) == 1
        second = k.expect("workflow.step.retrying")
        clock.advance(9.5)  # not yet: the pause is 10 s
        assert (await wf.run(run_id))["steps"]["a"]["status"] == "retrying"
        clock.advance(0.5)
        [event] = await second.wait()
        assert event.data["retry_at"] == clock.now() + 20  # factor 2
        done = k.expect("workflow.run.completed")
        clock.advance(20)
        await done.wait()
        run = await wf.run(run_id)
    assert [(c[1], c[2]) for c in probe.calls] == [(f"{run_id}:a", n) for n in (1, 2, 3)]
    assert run["steps"]["a"]["attempts"] == 3 and run["status"] == "completed"


async def test_a_step_that_outlives_its_timeout_fails_and_the_run_fails(
    workflows_kernel: Started, probe: Probe, clock: ManualClock
) -> None:
    probe.hang.add("svc.slow")
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow("name: t\nsteps:\n  - {id: a, call: svc.slow, timeout: 5}\n")
        started = k.expect("workflow.step.started")
        run_id = await wf.start("t")
        await started.wait()
        failed = k.expect("workflow.run.compensated")
        clock.advance(5)
        await failed.wait()
        run = await wf.run(run_id)
        probe.release.set()
    assert run["steps"]["a"]["status"] == "failed"
    assert "timed out after 5 s" in run["steps"]["a"]["error"]


PARALLEL = """\
name: fan
max_parallel: 2
steps:
  - {id: root, call: svc.root}
  - {id: x, call: svc.x, needs: [root]}
  - {id: y, call: svc.y, needs: [root]}
  - {id: z, call: svc.z, needs: [root]}
  - {id: join, call: svc.join, needs: [x, y, z]}
"""


async def test_branches_without_a_needs_path_run_in_parallel_up_to_max_parallel(
    workflows_kernel: Started, probe: Probe
) -> None:
    probe.hang |= {"svc.x", "svc.y", "svc.z"}
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(PARALLEL)
        two = k.expect("workflow.step.started", count=3)
        run_id = await wf.start("fan")
        await two.wait()  # root, then two of x, y, z
        run = await wf.run(run_id)
        in_flight = [s for s, v in run["steps"].items() if v["status"] == "running"]
        assert len(in_flight) == 2 and set(in_flight) < {"x", "y", "z"}
        done = k.expect("workflow.run.completed")
        probe.release.set()
        await done.wait()
    topics = [c[0] for c in probe.calls]
    assert topics[0] == "svc.root" and topics[-1] == "svc.join"
    assert set(topics[1:4]) == {"svc.x", "svc.y", "svc.z"}


WHEN = """\
name: when
inputs: {go: {type: boolean}}
steps:
  - {id: a, call: svc.a}
  - {id: b, call: svc.b, needs: [a], when: "${{ inputs.go and steps.a.output.ok }}"}
  - {id: c, call: svc.c, needs: [b], with: {b: "${{ steps.b.status }}"}}
"""


async def test_when_false_skips_the_step_and_dependents_still_run(
    workflows_kernel: Started, probe: Probe
) -> None:
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(WHEN)
        skipped = await wf.wait(await wf.start("when", {"go": False}))
        ran = await wf.wait(await wf.start("when", {"go": True}))
    assert skipped["status"] == ran["status"] == "completed"
    assert skipped["steps"]["b"]["status"] == "skipped"
    assert ran["steps"]["b"]["status"] == "completed"
    assert [c[3] for c in probe.calls if c[0] == "svc.c"] == [{"b": "skipped"}, {"b": "completed"}]


SAGA = """\
name: saga
steps:
  - id: a
    call: svc.a
    compensate: {call: svc.undo_a, with: {id: "${{ steps.a.output.id }}"}}
  - id: b
    call: svc.b
    needs: [a]
    compensate: {call: svc.undo_b, retry: {attempts: 2, backoff: 1}}
  - id: c
    call: svc.c
    needs: [a]
    compensate: {call: svc.undo_c}
  - {id: d, call: svc.d, needs: [b, c]}
"""


async def test_a_failed_step_compensates_completed_steps_in_reverse_completion_order(
    workflows_kernel: Started, probe: Probe
) -> None:
    probe.always_fail.add("svc.d")
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(SAGA)
        alerts = k.expect("workflow.step.compensated", count=3)
        run = await wf.wait(await wf.start("saga"))
        await alerts.wait()
    assert run["status"] == "compensated" and run["reason"] == "step_failed"
    assert "svc.d answered an error" in run["error"]
    forward = [c[1].split(":")[1] for c in probe.calls if not c[0].startswith("svc.undo")]
    undo = [c[0] for c in probe.calls if c[0].startswith("svc.undo")]
    completed = forward[:3]  # a, then b and c in the order they completed
    assert undo == [f"svc.undo_{s}" for s in reversed(completed)]
    assert probe.calls[-1][3] == {"id": f"id-{run['id']}:a"}
    assert probe.calls[-1][1] == f"{run['id']}:a:compensate"
    assert all(
        v.get("compensation", {}).get("status") in (None, "done") for v in run["steps"].values()
    )


async def test_a_compensation_that_fails_for_good_fails_the_run_with_an_alert(
    workflows_kernel: Started, probe: Probe, clock: ManualClock
) -> None:
    probe.always_fail |= {"svc.d", "svc.undo_b"}
    async with workflows_kernel() as (k, wf):
        await wf.put_workflow(SAGA)
        alert = k.expect("workflow.run.compensation_failed")
        retrying = k.expect("workflow.step.compensation_retrying")
        run_id = await wf.start("saga")
        await retrying.wait()
        clock.advance(1)
        [event] = await alert.wait()
        run = await wf.run(run_id)
    assert run["status"] == "failed" and run["reason"] == "compensation_failed"
    assert "compensation of step b failed" in run["error"]
    assert event.data["run"] == run_id
    assert [c[2] for c in probe.calls if c[0] == "svc.undo_b"] == [1, 2]
