"""Turning what callers pass (keyword arguments, JSON from the bus or HTTP) into tasks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from ._model import PAUSED, PRIORITIES, QUEUED, Extra, Task
from ._queue import LEVELS
from .errors import InvalidTaskOptions

__all__ = ["TASK_OPTIONS", "build_task", "parse_priority", "parse_time"]

_EXTRA_FIELDS: Final = frozenset(Extra.__struct_fields__)
#: Every option a task accepts (besides ``name`` and ``data``).
TASK_OPTIONS: Final = frozenset(
    {
        "id",
        "queue",
        "priority",
        "at",
        "delay",
        "deadline",
        "deadline_in",
        "retries",
        "timeout",
        "paused",
        "idempotency_key",
    }
    | _EXTRA_FIELDS
)
_NORMAL: Final = PRIORITIES["normal"]
_TUPLE_FIELDS: Final = ("tags", "nodes", "avoid_nodes", "affinity", "anti_affinity", "exclusive")


def parse_priority(value: Any) -> int:
    """A priority level from a number (0 = most urgent) or a name such as "high"."""
    if isinstance(value, str):
        if value.lower() in PRIORITIES:
            return PRIORITIES[value.lower()]
        if value.isdigit():
            value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < LEVELS:
        return value
    names = ", ".join(PRIORITIES)
    raise InvalidTaskOptions("priority", value, f"use 0..{LEVELS - 1} or one of {names}")


def parse_time(field: str, value: Any) -> float:
    """Epoch seconds from a number, an ISO 8601 string or a datetime (naive = UTC)."""
    if isinstance(value, bool):
        raise InvalidTaskOptions(field, value, "use epoch seconds or an ISO 8601 time")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidTaskOptions(field, value, "use a finite number of epoch seconds")
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as e:
            raise InvalidTaskOptions(
                field, value, "use epoch seconds or ISO 8601 like 2030-01-31T08:00:00+01:00"
            ) from e
    if isinstance(value, datetime):
        if value.tzinfo is None:
            from datetime import UTC

            value = value.replace(tzinfo=UTC)
        return float(value.timestamp())
    raise InvalidTaskOptions(field, value, "use epoch seconds or an ISO 8601 time")


def _seconds(field: str, value: Any, *, allow_zero: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidTaskOptions(field, value, f"use a number of seconds {bound}")
    return float(value)


def _extra(options: Mapping[str, Any]) -> Extra | None:
    values = {k: v for k, v in options.items() if k in _EXTRA_FIELDS and v is not None}
    if "idempotency_key" in options and options["idempotency_key"] is not None:
        values["key"] = str(options["idempotency_key"])
    if not values:
        return None
    for field in _TUPLE_FIELDS:
        if field in values:
            raw = values[field]
            raw = [raw] if isinstance(raw, str) else raw
            if not all(isinstance(x, str) for x in raw):
                raise InvalidTaskOptions(field, raw, "use a list of label strings")
            values[field] = tuple(raw)
    if "resources" in values:
        res = values["resources"]
        if not isinstance(res, Mapping) or not all(
            isinstance(v, int | float) and v >= 0 for v in res.values()
        ):
            raise InvalidTaskOptions("resources", res, 'use e.g. {"cpu": 2, "memory": 512}')
        values["resources"] = {str(k): float(v) for k, v in res.items()}
    for field in ("backoff", "backoff_max"):
        if field in values:
            values[field] = _seconds(field, values[field])
    if "jitter" in values and not 0 <= values["jitter"] <= 1:
        raise InvalidTaskOptions("jitter", values["jitter"], "use a fraction between 0 and 1")
    try:
        return Extra(**values)
    except TypeError as e:
        raise InvalidTaskOptions("options", values, str(e)) from e


def build_task(
    task_id: str,
    name: str,
    data: Any,
    options: Mapping[str, Any],
    *,
    now: float,
    default_queue: str,
    default_retries: int,
) -> Task:
    """A new task from ``options`` (already merged with the function's defaults)."""
    if not options:  # the common case, kept cheap
        return Task(
            task_id, name, data, default_queue, _NORMAL, QUEUED, now, now, None, 0, 0,
            default_retries, None, None,
        )  # fmt: skip
    unknown = set(options) - TASK_OPTIONS
    if unknown:
        raise InvalidTaskOptions(
            "option", sorted(unknown)[0], f"known options: {', '.join(sorted(TASK_OPTIONS))}"
        )
    queue = options.get("queue") or default_queue
    if not isinstance(queue, str):
        raise InvalidTaskOptions("queue", queue, "use a queue name string")
    ready_at = now
    if options.get("at") is not None:
        ready_at = parse_time("at", options["at"])
    if options.get("delay") is not None:
        ready_at = now + _seconds("delay", options["delay"])
    deadline = None
    if options.get("deadline") is not None:
        deadline = parse_time("deadline", options["deadline"])
    if options.get("deadline_in") is not None:
        deadline = now + _seconds("deadline_in", options["deadline_in"])
    retries = options.get("retries")
    retries = default_retries if retries is None else retries
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise InvalidTaskOptions("retries", retries, "use a whole number >= 0")
    timeout = options.get("timeout")
    if timeout is not None:
        timeout = _seconds("timeout", timeout, allow_zero=False)
    priority = parse_priority(options.get("priority", PRIORITIES["normal"]))
    state = PAUSED if options.get("paused") else QUEUED
    return Task(
        task_id,
        name,
        data,
        queue,
        priority,
        state,
        now,
        ready_at,
        deadline,
        0,
        0,
        retries,
        timeout,
        _extra(options),
    )
