"""One event's attempts in a subscriber's worker: retries with backoff, the handler
timeout, the reply, and the failure callback after each failed attempt."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any

from orrery.sdk import Event

from ._causation import current_event
from ._host import SubscriptionHost
from ._watchdog import Watchdog
from .errors import HandlerTimeout

if TYPE_CHECKING:
    from ._subscription import MemorySubscription

__all__ = ["run_attempts"]


async def run_attempts(
    sub: MemorySubscription,
    host: SubscriptionHost,
    watchdog: Watchdog | None,
    event: Event,
    attempts: int,
    pending: Any,
) -> None:
    """Run ``sub``'s handler on ``event`` until it succeeds or attempts run out.

    ``attempts`` were made already (inline, by the publisher); ``pending`` is what a
    "sync" handler returned there to be awaited, if anything.
    """
    current_event.set(event)
    handler = sub.handler
    sync = sub.is_sync
    while True:
        if attempts and pending is None:
            await asyncio.sleep(host.retry_backoff * 2 ** (attempts - 1))
            if not sub.active:
                return
        try:
            if pending is not None:
                awaitable, pending = pending, None
                result = await _timed(watchdog, awaitable)
            elif sync:
                attempts += 1
                result = handler(event)
                if result is not None and inspect.isawaitable(result):
                    result = await _timed(watchdog, result)
            elif watchdog is None:
                attempts += 1
                result = await handler(event)
            else:
                attempts += 1
                mark = watchdog.begin()
                try:
                    result = await handler(event)
                finally:
                    watchdog.end(mark)
        except asyncio.CancelledError as exc:
            failure: BaseException = exc
            if watchdog is not None and watchdog.expired():
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                failure = HandlerTimeout(sub.owner, sub.pattern, event, watchdog.timeout)
            elif _being_cancelled():
                raise  # unsubscribe or stop: the worker itself is cancelled
            # Otherwise the handler raised CancelledError on its own (it awaited
            # something that was cancelled): a failure like any other.
            if host.handle_failure(sub, event, failure, max(attempts, 1)):
                return
            continue
        except Exception as exc:
            if host.handle_failure(sub, event, exc, max(attempts, 1)):
                return
            continue
        if watchdog is not None and watchdog.fired and watchdog.expired():
            # Cancelled for taking too long, but the handler swallowed it and returned:
            # a success; take the cancellation back so the worker is not left cancelling.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        if result is not None and event.replyto is not None:
            host.answer(event.replyto, result)
        return


async def _timed(watchdog: Watchdog | None, awaitable: Any) -> Any:
    """Await one attempt under the handler timeout."""
    if watchdog is None:
        return await awaitable
    attempt = watchdog.begin()
    try:
        return await awaitable
    finally:
        watchdog.end(attempt)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0
