"""Ready-queue ordering: priority, aging, earliest deadline first, FIFO; and backoff."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from orrery_scheduler import ReadyQueue, Task, backoff_delay, order_key

QUEUED = "queued"


def make(seq: int, priority: int, ready: float, deadline: float | None = None) -> Task:
    task = Task(
        f"t{seq}", "f", None, "q", priority, QUEUED, ready, ready, deadline, 0, 0, 0, None, None
    )
    task.seq = seq
    return task


def drain(queue: ReadyQueue, now: float) -> list[str]:
    out = []
    while (task := queue.pop(now)) is not None:
        out.append(task.id)
    return out


def test_priority_then_fifo_without_aging() -> None:
    queue = ReadyQueue("q", aging=None)
    for seq, priority in enumerate([3, 1, 3, 0, 1], 1):
        queue.push(make(seq, priority, ready=float(seq)))
    assert drain(queue, 100.0) == ["t4", "t2", "t5", "t1", "t3"]


def test_edf_inside_a_priority_and_deadlines_before_none() -> None:
    queue = ReadyQueue("q", aging=None)
    queue.push(make(1, 2, 0.0))
    queue.push(make(2, 2, 0.0, deadline=50.0))
    queue.push(make(3, 2, 0.0, deadline=20.0))
    queue.push(make(4, 1, 0.0, deadline=99.0))
    assert drain(queue, 0.0) == ["t4", "t3", "t2", "t1"]


def test_aging_raises_one_level_per_interval() -> None:
    queue = ReadyQueue("q", aging=10.0)
    queue.push(make(1, 4, ready=0.0))
    queue.push(make(2, 2, ready=25.0))
    # at 25: t1 aged 2 steps -> level 2, t2 level 2; FIFO by ready time
    assert queue.peek(25.0) is not None and queue.peek(25.0)[1].id == "t1"  # type: ignore[index]
    queue.push(make(3, 1, ready=29.0))
    # at 29: t1 is level 2, t3 level 1 -> t3 first
    assert queue.peek(29.0)[1].id == "t3"  # type: ignore[index]
    # at 40 all three reached level 0: first come, first served
    assert drain(queue, 40.0) == ["t1", "t2", "t3"]


def test_discarded_tasks_are_skipped() -> None:
    queue = ReadyQueue("q", aging=5.0)
    tasks = [make(i, i % 3, float(i)) for i in range(1, 7)]
    for task in tasks:
        queue.push(task)
    queue.discard(tasks[0])
    tasks[3].state = "cancelled"
    assert len(queue) == 5
    assert "t1" not in drain(queue, 10.0)


entries = st.lists(
    st.tuples(
        st.integers(0, 9),
        st.floats(0, 200, allow_nan=False),
        st.one_of(st.none(), st.floats(0, 500, allow_nan=False)),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(entries=entries, aging=st.sampled_from([None, 7.5, 30.0]), step=st.floats(0, 50))
def test_pops_follow_the_reference_order(
    entries: list[tuple[int, float, float | None]], aging: float | None, step: float
) -> None:
    """Whatever the mix, each pop returns the task with the smallest reference key
    (effective level, deadline, ready time, arrival) at that moment."""
    queue = ReadyQueue("q", aging=aging)
    tasks = [make(i, p, r, d) for i, (p, r, d) in enumerate(sorted(entries, key=lambda e: e[1]), 1)]
    now = max(t.ready_at for t in tasks)
    for task in tasks:
        queue.push(task)
    left = set(tasks_by_id := {t.id: t for t in tasks})
    while left:
        popped = queue.pop(now)
        assert popped is not None
        best = min((order_key(tasks_by_id[i], now, aging), i) for i in left)
        assert order_key(popped, now, aging) == best[0]
        left.remove(popped.id)
        now += step
    assert queue.pop(now) is None


@settings(max_examples=100, deadline=None)
@given(wait=st.floats(0, 1000), priority=st.integers(1, 9))
def test_no_starvation_bound(wait: float, priority: int) -> None:
    """A waiting task is at level 0 after ``priority`` aging intervals (+1 for the grid)."""
    aging = 10.0
    task = make(1, priority, ready=0.0)
    level = order_key(task, wait, aging)[0]
    if wait >= (priority + 1) * aging:
        assert level == 0
    assert level <= priority


def test_backoff_is_exponential_capped_and_deterministic() -> None:
    delays = [backoff_delay("t", n, 1.0, 30.0, 0.0) for n in range(1, 8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    jittered = [backoff_delay("t", n, 1.0, 30.0, 0.5) for n in range(1, 8)]
    assert jittered == [backoff_delay("t", n, 1.0, 30.0, 0.5) for n in range(1, 8)]
    for plain, jit in zip(delays, jittered, strict=True):
        assert plain * 0.5 <= jit <= plain
    assert backoff_delay("other", 3, 1.0, 30.0, 0.5) != jittered[2]
    assert math.isclose(backoff_delay("t", 1, 0.0, 30.0, 0.5), 0.0)


@pytest.mark.parametrize("jitter", [0.0, 1.0])
def test_backoff_jitter_bounds(jitter: float) -> None:
    assert 0.0 <= backoff_delay("x", 2, 4.0, 100.0, jitter) <= 8.0
