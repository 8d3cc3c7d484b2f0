"""Orrery SDK: the only package a plugin imports.

It stays light on purpose: a sandboxed worker imports just this and the plugin.
"""

from ._context import (
    Bus,
    Context,
    Handler,
    HttpRequest,
    HttpResponse,
    HttpRoutes,
    Journal,
    JournalEvent,
    Services,
    Store,
    Subscription,
)
from ._event import Event
from ._ids import new_event_id
from ._kernel_info import KERNEL, KernelInfo
from ._markers import hookimpl, hookspec
from ._plugin import Plugin
from ._services import ServiceKey
from ._subjects import subject_matches, validate_pattern, validate_topic
from .clock import Clock, SystemClock
from .errors import (
    BusError,
    ConfigError,
    HttpError,
    InvalidEvent,
    InvalidTopic,
    NoResponders,
    OrreryError,
    PermissionDenied,
    PluginError,
    RequestTimeout,
    ServiceNotFound,
    StoreError,
    WrongExpectedVersion,
)

__all__ = [
    "KERNEL",
    "Bus",
    "BusError",
    "Clock",
    "ConfigError",
    "Context",
    "Event",
    "Handler",
    "HttpError",
    "HttpRequest",
    "HttpResponse",
    "HttpRoutes",
    "InvalidEvent",
    "InvalidTopic",
    "Journal",
    "JournalEvent",
    "KernelInfo",
    "NoResponders",
    "OrreryError",
    "PermissionDenied",
    "Plugin",
    "PluginError",
    "RequestTimeout",
    "ServiceKey",
    "ServiceNotFound",
    "Services",
    "Store",
    "StoreError",
    "Subscription",
    "SystemClock",
    "WrongExpectedVersion",
    "hookimpl",
    "hookspec",
    "new_event_id",
    "subject_matches",
    "validate_pattern",
    "validate_topic",
]
