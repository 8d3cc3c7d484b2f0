"""Kernel instrumentation from the kernel's own events (``orrery.>``).

The plugin subscribes to kernel topics only, so with the plugin absent the bus has no
extra subscriber and pays nothing. What is counted:

- ``orrery_events_total{prefix}``: kernel events by their first three topic tokens;
- ``orrery_plugin_events_total{event}``: ``orrery.plugin.<event>`` announcements, i.e.
  state changes plus ``reloaded`` and ``reload_failed``;
- ``orrery_plugin_state{plugin,state}``: 1 for each plugin's current state (the event's
  ``state`` field, else the event name), 0 for the states it left;
- ``orrery_event_duration_seconds{prefix}``: any kernel event carrying a numeric
  ``duration_s`` (handler latency, HTTP requests, reloads...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orrery.sdk import Event

from ._registry import MetricsRegistry

__all__ = ["KERNEL_PATTERN", "KernelInstruments"]

#: The only pattern the plugin subscribes to for instrumentation.
KERNEL_PATTERN = "orrery.>"
_PREFIX_TOKENS = 3


class KernelInstruments:
    """Turns kernel events into metrics; `handle` is the bus handler."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.events = registry.counter(
            "orrery_events_total", "Kernel events by topic prefix", ("prefix",)
        )
        self.plugin_state = registry.gauge(
            "orrery_plugin_state", "1 for the current state of each plugin", ("plugin", "state")
        )
        self.plugin_events = registry.counter(
            "orrery_plugin_events_total", "Plugin state changes and reloads", ("event",)
        )
        self.durations = registry.histogram(
            "orrery_event_duration_seconds",
            "Durations reported by kernel events (duration_s)",
            ("prefix",),
        )
        self._states: dict[str, str] = {}

    def handle(self, event: Event) -> None:
        """Account for one kernel event."""
        tokens = event.topic.split(".")
        prefix = ".".join(tokens[:_PREFIX_TOKENS])
        self.events.labels(prefix).inc()
        data = event.data if isinstance(event.data, Mapping) else {}
        if len(tokens) == 3 and tokens[1] == "plugin":
            self._plugin_state(tokens[2], data)
        duration = data.get("duration_s")
        if isinstance(duration, (int, float)) and not isinstance(duration, bool):
            self.durations.labels(prefix).observe(duration)

    def _plugin_state(self, what: str, data: Mapping[str, Any]) -> None:
        self.plugin_events.labels(what).inc()
        plugin = data.get("name", data.get("plugin"))
        state = data.get("state", what)
        if not isinstance(plugin, str) or not isinstance(state, str):
            return
        previous = self._states.get(plugin)
        if previous is not None and previous != state:
            self.plugin_state.labels(plugin, previous).set(0)
        self.plugin_state.labels(plugin, state).set(1)
        self._states[plugin] = state
