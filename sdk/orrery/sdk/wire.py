"""What the kernel and the sandbox need from the SDK beyond the plugin API.

Event encoding helpers, the event id generator and the pluggy project name live in
private SDK modules; this module is their public face, so no code outside the SDK
imports an ``orrery.sdk._x`` module. Plugins rarely need it.
"""

from ._event import SPECVERSION, Event, format_time_ns, parse_time_ns, validate_headers
from ._ids import EventIdGenerator, new_event_id
from ._markers import PROJECT_NAME, hookimpl, hookspec

__all__ = [
    "PROJECT_NAME",
    "SPECVERSION",
    "Event",
    "EventIdGenerator",
    "format_time_ns",
    "hookimpl",
    "hookspec",
    "new_event_id",
    "parse_time_ns",
    "validate_headers",
]
