"""The replicated task table: operations applied in order give the same state, and
running tasks' resources are released however they stop."""

from __future__ import annotations

from typing import Any

from orrery_scheduler import Extra, Task
from orrery_scheduler._placement import ClusterView
from orrery_scheduler._state import TaskTable


def table(now: float = 100.0) -> TaskTable:
    view = ClusterView("n1", quotas={"g": {"cpu": 4}})
    return TaskTable(view, aging=None, keep_finished=10, clock=lambda: now)


def task(task_id: str, **extra: Any) -> Task:
    options = Extra(**extra) if extra else None
    return Task(task_id, "f", None, "q", 2, "queued", 0.0, 0.0, None, 0, 0, 3, None, options)


def test_resources_are_released_on_requeue_and_expiry() -> None:
    t = table()
    t.apply(["add", task("a", group="g", resources={"cpu": 2}, tags=("x",))])
    t.apply(["add", task("b", group="g", resources={"cpu": 1})])
    t.apply(["node", "n2/s1", 100.0, "start"])
    assert t.apply(["claim", "a", 1, "n1/s1", 100.0]) is not None
    assert t.apply(["claim", "b", 1, "n2/s1", 100.0]) is not None
    assert t.view.usage()["groups"] == {"g": {"cpu": 3.0}}
    t.apply(["requeue", "a", 1, 101.0, "preempted"])
    assert t.view.usage()["groups"] == {"g": {"cpu": 1.0}}
    assert t.view.usage()["node"] == {"cpu": 0.0}
    lost = t.apply(["expire", "n2/s1", 102.0])
    assert [x.id for x in lost] == ["b"]
    assert t.view.usage()["groups"] == {"g": {"cpu": 0.0}}
    assert t.tasks["b"].state == "queued" and t.tasks["b"].owner is None
    assert t.running_owners["n2/s1"] == 0


def test_claims_are_exclusive_per_attempt_and_replay_is_idempotent() -> None:
    ops: list[list[Any]] = [
        ["add", ["t", "f", 1, "q", 2, "queued", 0.0, 0.0, None, 0, 0, 1, None, None]],
        ["claim", "t", 1, "n1/a", 1.0],
        ["claim", "t", 1, "n2/b", 1.0],  # lost the race: ignored by everyone
        ["fail", "t", 1, 2.0, "boom", 5.0],
        ["claim", "t", 2, "n2/b", 6.0],
        ["done", "t", 1, 6.5, "stale"],  # an old attempt's late result: ignored
        ["done", "t", 2, 7.0, "ok"],
    ]
    first, second = table(), table()
    results = [first.apply(op) is not None for op in ops]
    assert results == [True, True, False, True, True, False, True]
    for op in ops + ops:  # a replay, twice over
        second.apply(op)
    a, b = first.tasks["t"], second.tasks["t"]
    assert (a.state, a.attempt, a.owner, a.result, a.failures) == (
        "completed",
        2,
        "n2/b",
        "ok",
        1,
    )
    assert (b.state, b.attempt, b.result) == (a.state, a.attempt, a.result)


def test_a_new_session_of_a_node_requeues_the_old_sessions_tasks() -> None:
    t = table()
    t.apply(["add", task("a")])
    t.apply(["node", "n1/old", 1.0, "start"])
    t.apply(["claim", "a", 1, "n1/old", 1.0])
    lost = t.apply(["node", "n1/new", 2.0, "start"])
    assert [x.id for x in lost] == ["a"]
    assert set(t.sessions) == {"n1/new"}
