"""The log of a failed handler attempt, and the dead letter of a given-up event."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from orrery.sdk import Event

from ._causation import lineage

if TYPE_CHECKING:
    from ._subscription import MemorySubscription

__all__ = ["dead_letter", "log_failure"]

log = logging.getLogger("orrery.bus")


def log_failure(
    sub: MemorySubscription, event: Event, exc: BaseException, attempts: int, max_attempts: int
) -> bool:
    """Log failed attempt number ``attempts`` of ``sub`` on ``event``; True when that
    was the last one. The log names the subscriber's owner, so an operator can tell which
    plugin is failing."""
    error = f"{type(exc).__name__}: {exc}"
    if attempts >= max_attempts:
        log.error(
            "subscriber %s (pattern %r) gave up on event %s on %r after %d attempt(s): %s",
            sub.owner,
            sub.pattern,
            event.id,
            event.type,
            attempts,
            error,
            exc_info=exc,
        )
        return True
    log.warning(
        "subscriber %s (pattern %r) failed on event %s on %r, attempt %d of %d: %s; retrying",
        sub.owner,
        sub.pattern,
        event.id,
        event.type,
        attempts,
        max_attempts,
        error,
    )
    return False


def dead_letter(
    event: Event,
    sub: MemorySubscription,
    error: str,
    attempts: int,
    topic: str,
    next_id: Callable[[int], str],
    source: str,
) -> Event:
    """The event published on ``topic`` (``orrery.deadletter.<type>``) for ``event``."""
    now = time.time_ns()
    correlationid, causationid = lineage(event)
    return Event(
        id=next_id(now),
        type=topic,
        source=source,
        time_ns=now,
        subject=event.subject,
        data={
            "event": event.to_dict(),
            "error": error,
            "attempts": attempts,
            "subscriber": sub.owner,
            "pattern": sub.pattern,
        },
        correlationid=correlationid,
        causationid=causationid,
    )
