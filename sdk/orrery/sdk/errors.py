"""Errors raised through the SDK.

Every error carries the offending object as an attribute and a message that says what
went wrong and what to do about it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "BusError",
    "ConfigError",
    "DaemonNotRunning",
    "HttpError",
    "InvalidEvent",
    "InvalidTopic",
    "NoResponders",
    "OrreryError",
    "PermissionDenied",
    "PluginError",
    "RequestTimeout",
    "ServiceNotFound",
    "StoreError",
    "UsageError",
    "WrongExpectedVersion",
]


class OrreryError(Exception):
    """Base class of every error Orrery raises on purpose."""


class PluginError(OrreryError):
    """A plugin is malformed, failed to load, or failed in one of its hooks."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class ConfigError(OrreryError):
    """Configuration is invalid; ``path`` names the offending field (``plugins.x.y``)."""

    def __init__(self, message: str, *, path: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.source = source


class BusError(OrreryError):
    """Base class of event bus errors."""


class InvalidTopic(BusError, ValueError):
    """A topic or subscription pattern does not follow NATS subject syntax."""

    def __init__(self, topic: object, reason: str) -> None:
        super().__init__(
            f"invalid topic {topic!r}: {reason}. Topics are dot-separated tokens such as "
            f"'orders.created'; patterns may use '*' for one token and '>' for the rest"
        )
        self.topic = topic
        self.reason = reason


class InvalidEvent(BusError, ValueError):
    """Serialized data is not a valid CloudEvents 1.0 event."""

    def __init__(self, reason: str, *, payload: Any = None) -> None:
        super().__init__(f"invalid CloudEvent: {reason}")
        self.reason = reason
        self.payload = payload


class RequestTimeout(BusError, TimeoutError):
    """No reply arrived within the request's timeout."""

    def __init__(self, topic: str, timeout: float) -> None:
        super().__init__(
            f"no reply on {topic!r} within {timeout:g}s; the responder may be slow or "
            f"stuck: raise timeout= or check the responding plugin's health"
        )
        self.topic = topic
        self.timeout = timeout


class NoResponders(BusError):
    """A request was published on a topic nobody subscribes to."""

    def __init__(self, topic: str) -> None:
        super().__init__(
            f"no subscriber for request on {topic!r}; start the plugin that answers it "
            f"or check the topic's spelling"
        )
        self.topic = topic


class PermissionDenied(OrreryError, PermissionError):
    """A plugin attempted something its declared ``permissions`` do not allow."""

    def __init__(self, plugin: str, action: str, resource: str = "") -> None:
        wanted = f"{action}:{resource}" if resource else action
        super().__init__(
            f"plugin {plugin!r} is not permitted to {wanted}; declare a matching entry "
            f"in its permissions, e.g. permissions = [{wanted!r}]"
        )
        self.plugin = plugin
        self.action = action
        self.resource = resource


class ServiceNotFound(OrreryError, LookupError):
    """No plugin provides the requested service."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"no plugin provides service {key!r}; add the providing plugin to your "
            f"plugin's requires so it starts first"
        )
        self.key = key


class StoreError(OrreryError):
    """The key-value store or journal failed to read or write."""


class WrongExpectedVersion(StoreError):
    """An append's ``expected_version`` did not match the stream's current version."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream!r} is at version {actual}, not the expected {expected}; "
            f"another writer appended first: re-read the stream and retry"
        )
        self.stream = stream
        self.expected = expected
        self.actual = actual


class HttpError(OrreryError):
    """Raised by a plugin's HTTP route handler to answer with a 4xx/5xx status.

    The daemon sends ``{"status", "error", "field"}`` with ``status`` (e.g. 400 for a bad
    query parameter, 404 for an unknown item) instead of a generic 500.
    """

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"HttpError needs a 4xx or 5xx status, got {status}")
        super().__init__(message)
        self.status = status
        #: The request field at fault (a query parameter, ``body``...), sent as ``field``.
        self.field = field


class DaemonNotRunning(OrreryError):
    """No daemon answers where a client looked for one."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ApiError(OrreryError):
    """The daemon answered a client's request with an error status."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"daemon answered {status}: {message}{where}")
        self.status = status
        self.message = message
        self.field = field


class UsageError(OrreryError):
    """A command was used wrongly (a bad argument, no daemon to talk to, no token).

    Plugin commands built with `orrery.sdk.cli` exit with status 2 for it.
    """
