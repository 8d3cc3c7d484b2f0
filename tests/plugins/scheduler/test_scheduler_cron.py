"""Cron and interval schedules: fire times in time zones, misfire policies, and firing
in a real kernel on a manual clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from orrery.sdk.testing import ManualClock
from orrery_scheduler import (
    InvalidTaskOptions,
    Schedule,
    due_fire_times,
    next_fire_after,
)

BERLIN = ZoneInfo("Europe/Berlin")


def ts(text: str, zone: ZoneInfo = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def test_cron_fires_in_its_time_zone_across_dst() -> None:
    schedule = Schedule(id="s", name="f", cron="30 2 * * *", tz="Europe/Berlin").validate()
    # 2030-03-31 is the spring-forward day in Berlin: 02:30 does not exist that night.
    first = next_fire_after(schedule, ts("2030-03-29T12:00:00"))
    assert first == ts("2030-03-30T02:30:00")
    following = next_fire_after(schedule, first)
    assert following > first
    assert (
        datetime.fromtimestamp(next_fire_after(schedule, ts("2030-04-01T12:00:00")), BERLIN).hour
        == 2
    )


def test_interval_fires_on_its_grid() -> None:
    schedule = Schedule(id="s", name="f", every=60.0, start=1000.0).validate()
    assert next_fire_after(schedule, 1000.0) == 1060.0
    assert next_fire_after(schedule, 1059.9) == 1060.0
    assert next_fire_after(schedule, 500.0) == 1000.0


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("skip", []), ("once", [1300.0]), ("all", [1060.0, 1120.0, 1180.0, 1240.0, 1300.0])],
)
def test_misfire_policies(policy: str, expected: list[float]) -> None:
    schedule = Schedule(
        id="s", name="f", every=60.0, start=1000.0, created=1000.0, misfire=policy, grace=5.0
    ).validate()
    fires, last = due_fire_times(schedule, 1330.0)
    assert fires == expected
    assert last == 1300.0


def test_on_time_fires_run_under_every_policy() -> None:
    for policy in ("skip", "once", "all"):
        schedule = Schedule(
            id="s", name="f", every=60.0, start=0.0, created=0.0, last_fire=60.0, misfire=policy
        )
        assert due_fire_times(schedule, 121.0) == ([120.0], 120.0)
        assert due_fire_times(schedule, 119.0) == ([], None)


def test_all_is_capped_by_max_catchup() -> None:
    schedule = Schedule(
        id="s", name="f", every=1.0, start=0.0, created=0.0, misfire="all", max_catchup=3
    )
    fires, last = due_fire_times(schedule, 1000.0)
    assert fires == [1.0, 2.0, 3.0] and last == 1000.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * *", "every": 5.0}, "exactly one"),
        ({"every": 0.0}, "every"),
        ({"every": 5.0, "tz": "Mars/Olympus"}, "IANA"),
        ({"every": 5.0, "misfire": "sometimes"}, "misfire"),
    ],
)
def test_invalid_schedules_say_what_to_fix(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTaskOptions, match=message):
        Schedule(id="s", name="f", **fields).validate()


async def test_schedules_fire_on_the_manual_clock(
    scheduler_kernel: Any, clock: ManualClock
) -> None:
    async with scheduler_kernel() as (k, scheduler):
        seen: list[float | None] = []
        scheduler.register("tick", lambda job: seen.append(job.scheduled_for), mode="inline")
        start = clock.now()
        view = await scheduler.schedule("tick", every=60, id="ticker")
        assert view["next_fire"] == start + 60
        done = k.expect("task.completed", count=2)
        clock.advance(60)
        await k.expect("task.completed").wait()
        clock.advance(60)
        await done.wait()
        assert seen == [start + 60, start + 120]
        assert [s["id"] for s in scheduler.schedules()] == ["ticker"]
        await scheduler.pause_schedule("ticker")
        clock.advance(600)
        assert await scheduler.unschedule("ticker") is True
        assert len(seen) == 2


async def test_cron_schedule_with_time_zone(scheduler_kernel: Any, clock: ManualClock) -> None:
    clock.set(ts("2030-01-15T08:59:00"))
    async with scheduler_kernel() as (k, scheduler):
        scheduler.register("report", lambda: "sent", mode="inline")
        view = await scheduler.schedule("report", cron="0 9 * * mon-fri", tz="Europe/Berlin")
        assert view["next_fire"] == ts("2030-01-15T09:00:00")
        completed = k.expect("task.completed")
        clock.advance(60)
        [event] = await completed.wait()
        assert event.data["result"] == "sent"
