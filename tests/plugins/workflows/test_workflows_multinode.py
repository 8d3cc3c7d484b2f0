"""Two kernels sharing one SQLite journal: a run is advanced by the node holding its
lease only; when that node dies, the other takes the run over after the lease and
finishes it without re-running completed steps."""

from __future__ import annotations

from pathlib import Path

from orrery.sdk.testing import HarnessFactory, ManualClock
from orrery_workflows import WORKFLOWS, WorkflowsPlugin

from .conftest import Probe, ProbePlugin
from .test_workflows_engine import CHAIN


async def test_another_node_takes_a_run_over_after_the_lease(
    orrery_kernel: HarnessFactory, probe: Probe, clock: ManualClock, tmp_path: Path
) -> None:
    config = {
        "storage": {"path": str(tmp_path / "shared.db")},
        "plugins": {"workflows": {"poll_interval": 0.02, "lease": 30}},
    }
    probe.hang.add("svc.b")
    async with (
        orrery_kernel(WorkflowsPlugin, ProbePlugin, config=config, clock=clock,
                      state_dir=tmp_path / "a", node_id="a") as ka,
        orrery_kernel(WorkflowsPlugin, ProbePlugin, config=config, clock=clock,
                      state_dir=tmp_path / "b", node_id="b") as kb,
    ):  # fmt: skip
        wa, wb = ka.service(WORKFLOWS), kb.service(WORKFLOWS)
        await wa.put_workflow(CHAIN)
        started = ka.expect("workflow.step.started", where=lambda e: e.data["step"] == "b")
        run_id = await wa.start("chain", {"who": "ada"})
        await started.wait()
        await ka.kernel.disable("workflows")  # node a dies with the lease
        probe.hang.clear()
        probe.release.set()
        clock.advance(15)  # within the lease: b leaves the run alone
        assert (await wb.run(run_id))["steps"]["b"]["attempts"] == 1
        done = kb.expect("workflow.run.completed")
        clock.advance(16)
        await done.wait()
        run = await wb.run(run_id)
        history = await wb.history(run_id)
    assert run["status"] == "completed"
    claims = [e["data"]["node"] for e in history if e["type"] == "run.claimed"]
    assert claims[0] == "a" and claims[-1] == "b" and set(claims) == {"a", "b"}
    calls = [(c[0], c[1]) for c in probe.calls]
    assert calls.count(("svc.a", f"{run_id}:a")) == 1
    assert calls.count(("svc.b", f"{run_id}:b")) == 2  # in flight on a, sent again by b
    assert calls.count(("svc.c", f"{run_id}:c")) == 1
