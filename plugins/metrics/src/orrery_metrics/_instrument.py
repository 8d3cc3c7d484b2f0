"""Kernel instrumentation from kernel events, through one synchronous subscription.

The plugin subscribes once, to ``orrery.>`` (the kernel's own announcements: plugin
state changes, reloads, dead letters), with a synchronous handler the bus calls in
place. Other events never reach it: bus traffic of every topic is counted by the kernel
and read at scrape time (see `KernelSampler`), so the plugin adds nothing to the cost of
publishing ``orders.created``. Counted here:

- ``orrery_events_total{prefix}``: kernel events (``orrery.>``) by their first three
  tokens;
- ``orrery_plugin_events_total{event}``: ``orrery.plugin.<event>`` announcements, i.e.
  state changes plus ``reloaded`` and ``reload_failed``;
- ``orrery_plugin_reloads_total{plugin}``: successful hot reloads per plugin;
- ``orrery_plugin_state{plugin,state}``: 1 for each plugin's current state, 0 for the
  states it left;
- ``orrery_event_duration_seconds{prefix}``: kernel events carrying a numeric
  ``duration_s`` (handler latency, reloads...).

The handler never raises: a failing ``orrery.>`` subscriber would dead-letter the event
to ``orrery.deadletter.<topic>``, which it also matches, and so on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from orrery.sdk import Event

from ._registry import MetricsRegistry

__all__ = ["BUS_PATTERN", "KERNEL_PATTERN", "MAX_PREFIXES", "OTHER_PREFIX", "KernelInstruments"]

#: Kernel announcements: the one pattern the plugin subscribes to for instrumentation.
KERNEL_PATTERN = "orrery.>"
#: The pattern subscribed (kept under its old name for importers).
BUS_PATTERN = KERNEL_PATTERN
#: Distinct first tokens of bus traffic mirrored separately; topics are data, capped.
MAX_PREFIXES = 256
#: Where traffic of further first tokens is counted.
OTHER_PREFIX = "_other"
_KERNEL_PREFIX_TOKENS = 3
log = logging.getLogger("orrery.plugins.metrics")


class KernelInstruments:
    """Turns bus events into metrics; `handle` is the (synchronous) bus handler.

    ``own_source`` is the CloudEvents source of the metrics plugin's own events (or its
    ``/<name>`` suffix), which are not counted.
    """

    def __init__(self, registry: MetricsRegistry, own_source: str | None = None) -> None:
        self.events = registry.counter(
            "orrery_events_total", "Kernel events by topic prefix", ("prefix",)
        )
        self.plugin_state = registry.gauge(
            "orrery_plugin_state", "1 for the current state of each plugin", ("plugin", "state")
        )
        self.plugin_events = registry.counter(
            "orrery_plugin_events_total", "Plugin state changes and reloads", ("event",)
        )
        self.reloads = registry.counter(
            "orrery_plugin_reloads_total", "Successful hot reloads per plugin", ("plugin",)
        )
        self.durations = registry.histogram(
            "orrery_event_duration_seconds",
            "Durations reported by kernel events (duration_s)",
            ("prefix",),
        )
        self._own = own_source
        self._states: dict[str, str] = {}
        self.failures = 0

    def handle(self, event: Event) -> None:
        """Account for one event; never raises (see the module docstring)."""
        try:
            own = self._own
            if own is not None and event.source.endswith(own):
                return
            topic = event.topic
            if topic.startswith("orrery."):
                self._kernel_event(topic, event.data)
        except Exception:
            self.failures += 1
            if self.failures == 1:  # once: a broken counter must not flood the log
                log.exception("counting event %s failed; further failures are not logged", event)

    def _kernel_event(self, topic: str, data: Any) -> None:
        tokens = topic.split(".")
        prefix = ".".join(tokens[:_KERNEL_PREFIX_TOKENS])
        self.events.labels(prefix).inc()
        data = data if isinstance(data, Mapping) else {}
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
        if what == "reloaded":
            self.reloads.labels(plugin).inc()
        previous = self._states.get(plugin)
        if previous is not None and previous != state:
            self.plugin_state.labels(plugin, previous).set(0)
        self.plugin_state.labels(plugin, state).set(1)
        self._states[plugin] = state
