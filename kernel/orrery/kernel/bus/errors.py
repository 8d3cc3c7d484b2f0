"""Errors raised by the event bus (memory and NATS backends).

All derive from `orrery.sdk.errors.BusError`, so plugin code that catches the SDK error
also catches these. Each keeps the offending object and says what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orrery.sdk.errors import BusError, InvalidTopic, NoResponders, RequestTimeout

__all__ = [
    "BusClosed",
    "BusError",
    "DurableNotSupported",
    "BusUnavailable",
    "InvalidDurable",
    "InvalidGroup",
    "InvalidHeaders",
    "InvalidTopic",
    "NoResponders",
    "RequestTimeout",
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

    def __init__(self, group: object) -> None:
        super().__init__(
            f"invalid queue group {group!r}: use a non-empty string without whitespace, "
            f"e.g. group='workers'"
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
