"""Bus and kernel instrumentation from events, through one synchronous subscription.

The plugin subscribes once, to ``>``, with a synchronous handler: the bus calls an idle
synchronous handler directly, so counting costs a dictionary lookup and an add per
event. Without the plugin, the bus has no such subscriber and pays nothing. Counted:

- ``orrery_bus_events_total{prefix}``: every event by its first topic token (``orders``,
  ``orrery``, ``alert``...), at most `MAX_PREFIXES` of them, the rest as ``_other``;
- ``orrery_events_total{prefix}``: kernel events (``orrery.>``) by their first three
  tokens;
- ``orrery_plugin_events_total{event}``: ``orrery.plugin.<event>`` announcements, i.e.
  state changes plus ``reloaded`` and ``reload_failed``;
- ``orrery_plugin_reloads_total{plugin}``: successful hot reloads per plugin;
- ``orrery_plugin_state{plugin,state}``: 1 for each plugin's current state, 0 for the
  states it left;
- ``orrery_event_duration_seconds{prefix}``: kernel events carrying a numeric
  ``duration_s`` (handler latency, reloads...).

No feedback loop: events the metrics plugin publishes itself (alerts) are not counted,
so an alert on these counters cannot drive itself; and the handler never raises, since
a failing ``>`` subscriber would dead-letter the event to ``orrery.deadletter.<topic>``,
which it also matches, and so on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from orrery.sdk import Event

from ._children import CounterChild
from ._registry import MetricsRegistry

__all__ = ["BUS_PATTERN", "KERNEL_PATTERN", "MAX_PREFIXES", "OTHER_PREFIX", "KernelInstruments"]

#: The one pattern the plugin subscribes to for instrumentation.
BUS_PATTERN = ">"
#: Kernel announcements, a subset of what `BUS_PATTERN` sees.
KERNEL_PATTERN = "orrery.>"
#: Distinct first tokens counted separately; topics are data, so they are capped.
MAX_PREFIXES = 256
#: Where events of further first tokens are counted.
OTHER_PREFIX = "_other"
_KERNEL_PREFIX_TOKENS = 3
log = logging.getLogger("orrery.plugins.metrics")


class KernelInstruments:
    """Turns bus events into metrics; `handle` is the (synchronous) bus handler.

    ``own_source`` is the CloudEvents source of the metrics plugin's own events (or its
    ``/<name>`` suffix), which are not counted.
    """

    def __init__(self, registry: MetricsRegistry, own_source: str | None = None) -> None:
        self.bus_events = registry.counter(
            "orrery_bus_events_total", "Events published on the bus, by first topic token",
            ("prefix",),
        )  # fmt: skip
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
        self._prefixes: dict[str, CounterChild] = {}
        self._states: dict[str, str] = {}
        self.failures = 0

    def handle(self, event: Event) -> None:
        """Account for one event; never raises (see the module docstring)."""
        try:
            own = self._own
            if own is not None and event.source.endswith(own):
                return
            topic = event.topic
            prefix = topic.partition(".")[0]
            child = self._prefixes.get(prefix)
            if child is None:
                child = self._prefix_child(prefix)
            child.inc()
            if prefix == "orrery":
                self._kernel_event(topic, event.data)
        except Exception:
            self.failures += 1
            if self.failures == 1:  # once: a broken counter must not flood the log
                log.exception("counting event %s failed; further failures are not logged", event)

    def _prefix_child(self, prefix: str) -> CounterChild:
        if len(self._prefixes) >= MAX_PREFIXES:
            prefix = OTHER_PREFIX
            cached = self._prefixes.get(prefix)
            if cached is not None:
                return cached
        child = self._prefixes[prefix] = self.bus_events.labels(prefix)
        return child

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
