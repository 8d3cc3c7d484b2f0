"""Random DAGs through the real kernel: execution order respects needs, compensations
run in reverse completion order, and the terminal status matches the failures."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orrery.sdk.testing import HarnessFactory
from orrery_workflows import WORKFLOWS, WorkflowsPlugin

from . import conftest
from .conftest import Probe, ProbePlugin


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[list[int]], set[int], int]:
    size = draw(st.integers(1, 12))
    needs = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(size)
    ]
    failing = draw(st.sets(st.integers(0, size - 1), max_size=2))
    return needs, failing, draw(st.integers(1, 4))


def definition(needs: list[list[int]], max_parallel: int) -> dict[str, Any]:
    steps = [
        {
            "id": f"s{i}",
            "call": f"svc.s{i}",
            "needs": [f"s{n}" for n in deps],
            "compensate": {"call": f"svc.undo_s{i}"},
        }
        for i, deps in enumerate(needs)
    ]
    return {"name": "dag", "max_parallel": max_parallel, "steps": steps}


def blocked(needs: list[list[int]], failing: set[int]) -> set[int]:
    """Steps that can never run: a failing step lies on a needs path before them."""
    out: set[int] = set()
    for i, deps in enumerate(needs):
        if any(d in failing or d in out for d in deps):
            out.add(i)
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(dag=dags())
async def test_random_dags(orrery_kernel: HarnessFactory, dag: tuple[Any, set[int], int]) -> None:
    needs, failing, max_parallel = dag
    probe = conftest.PROBE = Probe()
    probe.always_fail = {f"svc.s{i}" for i in failing}
    config = {"plugins": {"workflows": {"poll_interval": 0.05}}}
    async with orrery_kernel(WorkflowsPlugin, ProbePlugin, config=config) as k:
        wf = k.service(WORKFLOWS)
        await wf.put_workflow(definition(needs, max_parallel))
        run_id = await wf.start("dag")
        run = await wf.wait(run_id, timeout=30)
        history = await wf.history(run_id)
    started = [e["data"]["step"] for e in history if e["type"] == "step.started"]
    completed = [e["data"]["step"] for e in history if e["type"] == "step.completed"]
    undone = [e["data"]["step"] for e in history if e["type"] == "comp.completed"]
    position = {sid: started.index(sid) for sid in started}
    finished = {sid: completed.index(sid) for sid in completed}
    for i, deps in enumerate(needs):
        sid = f"s{i}"
        if sid in position:
            # started only after everything it needs completed
            assert all(f"s{d}" in finished for d in deps), (sid, deps, completed)
    never = blocked(needs, failing)
    assert not {f"s{i}" for i in never} & set(started)
    if not failing:
        assert run["status"] == "completed"
        assert sorted(completed) == sorted(f"s{i}" for i in range(len(needs)))
        assert undone == []
    else:
        assert run["status"] == "compensated", run
        assert any(f"s{i}" in started for i in failing)
        assert undone == list(reversed(completed))
        assert [c[0] for c in probe.calls if c[0].startswith("svc.undo")] == [
            f"svc.undo_{sid}" for sid in undone
        ]
    in_flight_max = 0
    running: set[str] = set()
    for e in history:
        if e["type"] == "step.started":
            running.add(e["data"]["step"])
        elif e["type"] in ("step.completed", "step.failed"):
            running.discard(e["data"]["step"])
        in_flight_max = max(in_flight_max, len(running))
    assert in_flight_max <= max_parallel
