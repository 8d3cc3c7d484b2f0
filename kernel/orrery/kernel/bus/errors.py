"""Errors raised by the event bus (memory and NATS backends).

All derive from `orrery.sdk.errors.BusError`, so plugin code that catches the SDK error
also catches these. Each keeps the offending object and says what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orrery.sdk import Event
from orrery.sdk.errors import BusError, InvalidEvent, InvalidTopic, NoResponders, RequestTimeout

__all__ = [
    "BusClosed",
    "BusError",
    "DurableNotSupported",
    "BusUnavailable",
    "HandlerTimeout",
    "InvalidData",
    "InvalidDurable",
    "InvalidGroup",
    "InvalidHeaders",
    "InvalidTopic",
    "NoResponders",
    "RequestTimeout",
    "TooManySubscriptions",
]


class BusClosed(BusError):
    """The bus (or the client used) does not accept this operation in its current state.

    ``target`` is the bus or client that refused; ``operation`` what was attempted.
    """

    def __init__(self, target: object, operation: str, reason: str) -> None:
        super().__init__(f"cannot {operation} through {target!r}: {reason}")
        self.target = target
        self.operation = operation
        self.reason = reason


class DurableNotSupported(BusError):
    """``durable=`` was passed to a bus that cannot keep a subscription across restarts."""

    def __init__(self, durable: str, pattern: str) -> None:
        super().__init__(
            f"durable subscription {durable!r} on {pattern!r} is not supported by this "
            f"memory bus: it has no storage for the journal that keeps durable events. "
            f"Create it with MemoryBus(..., storage=storage) (the kernel does), subscribe "
            f"without durable= for at-most-once delivery, or use the nats backend"
        )
        self.durable = durable
        self.pattern = pattern


class InvalidGroup(BusError, ValueError):
    """A queue group name is not a non-empty string without whitespace."""

    def __init__(self, group: object, reason: str | None = None) -> None:
        super().__init__(
            f"invalid queue group {group!r}: "
            + (reason or "use a non-empty string without whitespace, e.g. group='workers'")
        )
        self.group = group


class InvalidHeaders(BusError, ValueError):
    """Event headers are not valid CloudEvents extension attributes."""

    def __init__(self, headers: Mapping[str, Any] | object, reason: str) -> None:
        super().__init__(f"invalid headers {headers!r}: {reason}")
        self.headers = headers
        self.reason = reason


class InvalidDurable(BusError, ValueError):
    """A durable name is malformed, or already used with another pattern."""

    def __init__(self, durable: object, pattern: str, reason: str) -> None:
        super().__init__(f"invalid durable subscription {durable!r} on {pattern!r}: {reason}")
        self.durable = durable
        self.pattern = pattern
        self.reason = reason


class BusUnavailable(BusError, ConnectionError):
    """The bus's server cannot be reached (or refused us) when the bus starts.

    ``server`` names the kind of server (``"NATS"``), ``address`` where we tried.
    """

    def __init__(self, server: str, address: str, reason: str, hint: str) -> None:
        super().__init__(f"cannot connect to the {server} server at {address}: {reason}. {hint}")
        self.server = server
        self.address = address
        self.reason = reason
        self.hint = hint


class HandlerTimeout(BusError, TimeoutError):
    """A handler did not return within its timeout: the attempt counts as failed."""

    def __init__(self, owner: str, pattern: str, event: Event, timeout: float | None) -> None:
        super().__init__(
            f"the handler of {owner} on {pattern!r} did not return within {timeout:g}s "
            f"for event {event.id} on {event.type!r}; it was cancelled. Make it return "
            f"sooner (hand long work to a task), or raise [bus] handler_timeout"
        )
        self.owner = owner
        self.pattern = pattern
        self.event = event
        self.timeout = timeout


class InvalidData(InvalidEvent, TypeError):
    """Event data that cannot be encoded as JSON, refused at publish.

    ``topic`` is where it was published, ``offending`` the type that cannot be encoded
    and ``path`` where in the data it sits (``data['a'][0]``).
    """

    def __init__(self, topic: str, offending: type, path: str, data: object) -> None:
        super().__init__(
            f"cannot publish on {topic!r}: {path} is a {offending.__module__}."
            f"{offending.__qualname__}, which cannot be encoded as JSON. Event data must "
            f"be JSON-able (dict, list, str, int, float, bool, None): convert it first, "
            f"e.g. str(value), value.isoformat() or a dict of its fields",
            payload=data,
        )
        self.topic = topic
        self.offending = offending
        self.path = path
        self.data = data


class TooManySubscriptions(BusError):
    """A client (one plugin) reached its bound on live subscriptions."""

    def __init__(self, owner: str, limit: int, pattern: str) -> None:
        super().__init__(
            f"{owner} cannot subscribe to {pattern!r}: it already has {limit} live "
            f"subscriptions, the most one plugin may hold ([bus] "
            f"max_subscriptions_per_plugin). Unsubscribe what it no longer needs, or "
            f"subscribe once to a wildcard pattern instead of once per topic"
        )
        self.owner = owner
        self.limit = limit
        self.pattern = pattern
