"""Recurring schedules: cron expressions (with time zones) and fixed intervals.

A schedule's replicated state is its definition plus ``last_fire``, the latest fire
time already turned into a task. Which fire times are due, and what to do with the
ones that were missed while no scheduler ran, follows from that alone, so a restart
or a second node never fires the same time twice.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import CroniterBadCronError, croniter

from .errors import InvalidTaskOptions

__all__ = ["MISFIRE_POLICIES", "Schedule", "due_fire_times", "next_fire_after"]

#: skip: missed fire times are dropped; once: one run stands for all missed ones;
#: all: every missed fire time runs (up to ``max_catchup``).
MISFIRE_POLICIES: Final = ("skip", "once", "all")


class Schedule(msgspec.Struct, kw_only=True):
    """A recurring task: ``cron`` (with ``tz``) or ``every`` seconds."""

    id: str
    name: str
    data: Any = None
    options: dict[str, Any] = {}
    cron: str | None = None
    tz: str = "UTC"
    every: float | None = None
    #: Interval schedules fire at ``start + k * every``.
    start: float = 0.0
    misfire: str = "once"
    #: A fire time later than this many seconds is a misfire.
    grace: float = 60.0
    max_catchup: int = 100
    paused: bool = False
    created: float = 0.0
    last_fire: float | None = None

    def validate(self) -> Schedule:
        """Check the definition; raises `InvalidTaskOptions` naming the field."""
        if (self.cron is None) == (self.every is None):
            raise InvalidTaskOptions(
                "schedule", self.id, "give exactly one of cron='*/5 * * * *' or every=<seconds>"
            )
        if self.every is not None and not self.every > 0:
            raise InvalidTaskOptions("every", self.every, "use a number of seconds > 0")
        if self.cron is not None:
            try:
                croniter(self.cron)
            except (CroniterBadCronError, ValueError, KeyError) as e:
                raise InvalidTaskOptions(
                    "cron", self.cron, f"{e}; use five fields, e.g. '0 3 * * mon-fri'"
                ) from e
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise InvalidTaskOptions(
                "tz", self.tz, "use an IANA time zone name such as 'Europe/Berlin'"
            ) from e
        if self.misfire not in MISFIRE_POLICIES:
            raise InvalidTaskOptions("misfire", self.misfire, f"use one of {MISFIRE_POLICIES}")
        if self.grace < 0 or self.max_catchup < 1:
            raise InvalidTaskOptions(
                "grace/max_catchup", (self.grace, self.max_catchup), "use grace >= 0, max >= 1"
            )
        return self


def next_fire_after(schedule: Schedule, after: float) -> float:
    """The first fire time strictly after ``after`` (epoch seconds)."""
    if schedule.every is not None:
        steps = math.floor((after - schedule.start) / schedule.every) + 1
        return schedule.start + max(steps, 0) * schedule.every
    assert schedule.cron is not None
    zone = ZoneInfo(schedule.tz)
    base = datetime.fromtimestamp(after, zone)
    value = croniter(schedule.cron, base).get_next(float)
    return float(value)


def latest_fire_at_or_before(schedule: Schedule, now: float) -> float:
    """The latest fire time at or before ``now`` (may be before the schedule began)."""
    if schedule.every is not None:
        steps = math.floor((now - schedule.start) / schedule.every)
        return schedule.start + steps * schedule.every
    assert schedule.cron is not None
    zone = ZoneInfo(schedule.tz)
    # get_prev is strictly before its base: nudge the base so ``now`` itself counts.
    base = datetime.fromtimestamp(now + 1e-3, zone)
    return float(croniter(schedule.cron, base).get_prev(float))


def due_fire_times(schedule: Schedule, now: float) -> tuple[list[float], float | None]:
    """Fire times to run at ``now`` after the misfire policy, and the new ``last_fire``
    (None when nothing is due).

    A fire time more than ``grace`` seconds old is a misfire. ``skip`` runs only an
    on-time fire; ``once`` runs one task standing for all due fire times; ``all`` runs
    each due fire time, the earliest ``max_catchup`` of them.
    """
    after = schedule.created if schedule.last_fire is None else schedule.last_fire
    latest = latest_fire_at_or_before(schedule, now)
    if latest <= after:
        return [], None
    if schedule.misfire == "once":
        return [latest], latest
    if schedule.misfire == "skip":
        return ([latest] if now - latest <= schedule.grace else []), latest
    due: list[float] = []
    cursor = after
    while len(due) < schedule.max_catchup:
        cursor = next_fire_after(schedule, cursor)
        if cursor > latest:
            break
        due.append(cursor)
    return due, latest
