"""Workflows engine against DBOS and LangGraph, in the same run.

- ``workflows.steps_per_s_sqlite``: 3-step no-op workflows (each step a bus request to a
  no-op service), RUNS of them in flight at once, on the embedded SQLite journal; DBOS
  (``dbos``, SQLite system database) runs the same 3-step workflow as many times, all
  started at once -> ``workflows.ratio_vs_dbos_sqlite`` (ours / DBOS, steps per second).
- ``workflows.start_to_done_p50_ms``: one 3-step workflow, start to completed, one after
  the other.
- ``workflows.approval_resume_p50_ms``: decision posted -> the next step's request
  arrives; LangGraph (SQLite checkpointer) interrupt -> ``Command(resume=...)`` -> the
  next node runs -> ``workflows.ratio_vs_langgraph_resume`` (ours / LangGraph).
- ``workflows.bytes_per_waiting_run``: tracemalloc growth per run waiting for approval.

Run as a script: ``python bench/bench_workflows.py``. A missing peer leaves its
figures out. Not measured here: ``workflows.ratio_vs_dbos_postgres``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

RUNS = 1_000
LATENCY_RUNS = 200
WAITING_RUNS = 2_000

THREE = {
    "name": "three",
    "max_parallel": 1,
    "steps": [
        {"id": "s1", "call": "noop.a"},
        {"id": "s2", "call": "noop.b", "needs": ["s1"]},
        {"id": "s3", "call": "noop.c", "needs": ["s2"]},
    ],
}
APPROVAL = {
    "name": "approval",
    "steps": [
        {"id": "s1", "call": "noop.a"},
        {"id": "ok", "needs": ["s1"], "approval": {}},
        {"id": "s2", "call": "noop.after", "needs": ["ok"]},
    ],
}


async def _kernel(state_dir: str) -> Any:
    from orrery.kernel import Kernel  # noqa: TID251 - the bench embeds a real kernel
    from orrery_workflows import WorkflowsPlugin

    config = {"plugins": {"workflows": {"poll_interval": 0.5}}}
    return Kernel(state_dir=state_dir, plugins=[WorkflowsPlugin], config=config,
                  entry_points=False, watch=False, env={})  # fmt: skip


async def _ours() -> dict[str, float]:
    from orrery_workflows import WORKFLOWS

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as state_dir:
        kernel = await _kernel(state_dir)
        async with kernel:
            wf = kernel.manager.services.get(WORKFLOWS)
            after: dict[str, float] = {}

            def noop(event: Any) -> Any:
                return {"ok": True}

            def on_after(event: Any) -> Any:
                key = (event.headers or {}).get("orrery-idempotency-key", "")
                after[key.split(":")[0]] = time.perf_counter()
                return {"ok": True}

            for topic in ("noop.a", "noop.b", "noop.c"):
                kernel.bus.subscribe(topic, noop)
            kernel.bus.subscribe("noop.after", on_after)
            await wf.put_workflow(THREE)
            await wf.put_workflow(APPROVAL)

            began = time.perf_counter()
            ids = await asyncio.gather(*(wf.start("three") for _ in range(RUNS)))
            docs = await asyncio.gather(*(wf.wait(i, timeout=600) for i in ids))
            elapsed = time.perf_counter() - began
            assert all(d["status"] == "completed" for d in docs)
            results["workflows.steps_per_s_sqlite"] = 3 * RUNS / elapsed

            latencies = []
            for _ in range(LATENCY_RUNS):
                t0 = time.perf_counter()
                run_id = await wf.start("three")
                await wf.wait(run_id)
                latencies.append((time.perf_counter() - t0) * 1000)
            results["workflows.start_to_done_p50_ms"] = statistics.median(latencies)

            resumes = []
            for _ in range(LATENCY_RUNS):
                run_id = await wf.start("approval")
                await wf.wait(run_id)
                t0 = time.perf_counter()
                await wf.decide(run_id, "ok", True, by="bench")
                await wf.wait(run_id)
                resumes.append((after[run_id] - t0) * 1000)
            results["workflows.approval_resume_p50_ms"] = statistics.median(resumes)

            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            waiting = await asyncio.gather(*(wf.start("approval") for _ in range(WAITING_RUNS)))
            await asyncio.gather(*(wf.wait(i, timeout=600) for i in waiting))
            while await wf.runs(status="running", limit=1):
                await asyncio.sleep(0.05)  # until every driver has released its run
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            results["workflows.bytes_per_waiting_run"] = grown / WAITING_RUNS
    return results


def _dbos_sqlite() -> float:
    from dbos import DBOS

    folder = tempfile.mkdtemp()
    DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{folder}/dbos.sqlite"})

    @DBOS.step()
    async def a() -> int:
        return 1

    @DBOS.step()
    async def b() -> int:
        return 2

    @DBOS.step()
    async def c() -> int:
        return 3

    @DBOS.workflow()
    async def three() -> int:
        return await a() + await b() + await c()

    DBOS.launch()
    try:

        async def all_runs() -> float:
            began = time.perf_counter()
            handles = await asyncio.gather(*(DBOS.start_workflow_async(three) for _ in range(RUNS)))
            await asyncio.gather(*(h.get_result() for h in handles))
            return 3 * RUNS / (time.perf_counter() - began)

        return asyncio.run(all_runs())
    finally:
        DBOS.destroy()


def _langgraph_resume_p50_ms() -> float:
    from typing import TypedDict

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    class State(TypedDict):
        v: int

    reached: dict[str, float] = {}

    def s1(state: State) -> State:
        return {"v": 1}

    def ok(state: State) -> State:
        interrupt("approve?")
        return {"v": 2}

    def s2(state: State) -> State:
        reached["t"] = time.perf_counter()
        return {"v": 3}

    builder = StateGraph(State)
    builder.add_node("s1", s1)
    builder.add_node("ok", ok)
    builder.add_node("s2", s2)
    builder.add_edge(START, "s1")
    builder.add_edge("s1", "ok")
    builder.add_edge("ok", "s2")
    builder.add_edge("s2", END)
    folder = Path(tempfile.mkdtemp())
    conn = sqlite3.connect(folder / "lg.sqlite", check_same_thread=False)
    graph = builder.compile(checkpointer=SqliteSaver(conn))
    resumes = []
    for i in range(LATENCY_RUNS):
        config: Any = {"configurable": {"thread_id": str(i)}}
        graph.invoke({"v": 0}, config)
        t0 = time.perf_counter()
        graph.invoke(Command(resume=True), config)
        resumes.append((reached["t"] - t0) * 1000)
    return statistics.median(resumes)


def run() -> dict[str, float]:
    results = asyncio.run(_ours())
    try:
        dbos_rate = _dbos_sqlite()
        results["workflows.dbos_steps_per_s_sqlite"] = dbos_rate
        results["workflows.ratio_vs_dbos_sqlite"] = (
            results["workflows.steps_per_s_sqlite"] / dbos_rate
        )
    except Exception as e:  # a missing or broken peer must not hide our own figures
        print(f"dbos: skipped ({type(e).__name__}: {e})", file=sys.stderr)
    try:
        lg = _langgraph_resume_p50_ms()
        results["workflows.langgraph_resume_p50_ms"] = lg
        results["workflows.ratio_vs_langgraph_resume"] = (
            results["workflows.approval_resume_p50_ms"] / lg
        )
    except Exception as e:
        print(f"langgraph: skipped ({type(e).__name__}: {e})", file=sys.stderr)
    return results


if __name__ == "__main__":
    os.environ.setdefault("DBOS__DISABLE_TELEMETRY", "1")
    for key, value in run().items():
        print(f"{key:42} {value:14,.2f}")
