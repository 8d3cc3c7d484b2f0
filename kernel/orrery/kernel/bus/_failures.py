"""What happens when a handler raises: log each attempt, dead-letter after the last."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from orrery.sdk import Event

if TYPE_CHECKING:
    from ._subscription import MemorySubscription

__all__ = ["record_failure"]

log = logging.getLogger("orrery.bus")


def record_failure(
    sub: MemorySubscription, event: Event, exc: BaseException, attempts: int
) -> bool:
    """Log failed attempt number ``attempts`` of ``sub`` on ``event``.

    Returns True when that was the last attempt; the event has then been handed to the
    bus for dead-lettering. The log names the subscriber's owner, so an operator can
    tell which plugin is failing.
    """
    error = f"{type(exc).__name__}: {exc}"
    max_attempts = sub._max_attempts
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
        sub._bus._dead_letter(sub, event, error, attempts)
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
