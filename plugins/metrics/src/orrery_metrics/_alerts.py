"""Alert evaluation: per rule and series, inactive -> pending -> firing -> resolved.

`AlertManager.evaluate` is pure with respect to time (it is handed ``now``) and returns
the notices to publish, so tests drive it with a fake clock and no event loop. An alert
is announced once when it starts firing and once when it resolves, however many
evaluations it spans: that is the de-duplication, keyed by a fingerprint of rule name,
metric and series labels.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ._anomaly import Detector, make_detector
from ._forecast import HoltForecaster
from ._registry import MetricsRegistry
from ._rules import AlertRule
from ._timeseries import SeriesStore
from ._values import series_value

__all__ = ["FIRING_TOPIC", "RESOLVED_TOPIC", "AlertManager", "AlertNotice"]

FIRING_TOPIC = "alert.firing"
RESOLVED_TOPIC = "alert.resolved"


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """An alert state change to publish on ``topic`` with ``data``, keyed by fingerprint."""

    topic: str
    fingerprint: str
    data: dict[str, Any]


@dataclass(slots=True)
class _Alert:
    rule: str
    fingerprint: str
    metric: str
    labels: dict[str, str]
    state: Literal["pending", "firing"]
    active_since: float
    fired_at: float | None = None
    value: float | None = None
    extra: dict[str, float | None] = field(default_factory=dict)


def fingerprint(rule: str, metric: str, labels: Mapping[str, str]) -> str:
    """Stable id of one alert: the same rule on the same series gives the same id."""
    raw = json.dumps([rule, metric, sorted(labels.items())], separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _render(template: str, values: Mapping[str, Any]) -> str:
    try:
        return template.format_map(_Defaulting(values))
    except (ValueError, AttributeError, IndexError):  # a malformed template stays as written
        return template


class AlertManager:
    """Evaluates alert rules over a registry (and its time series, for rates)."""

    def __init__(
        self,
        registry: MetricsRegistry,
        store: SeriesStore | None = None,
        rules: Iterable[AlertRule] = (),
    ) -> None:
        self.registry = registry
        self.store = store
        self._rules: dict[str, AlertRule] = {}
        self._alerts: dict[str, _Alert] = {}
        self._forecasters: dict[str, HoltForecaster] = {}
        self._detectors: dict[str, Detector] = {}
        self.set_rules(rules)

    @property
    def rules(self) -> list[AlertRule]:
        """The rules in evaluation order."""
        return list(self._rules.values())

    def set_rules(self, rules: Iterable[AlertRule]) -> None:
        """Replace the rules; alerts of dropped rules resolve at the next evaluation."""
        new: dict[str, AlertRule] = {}
        for rule in rules:
            if rule.name in new:
                raise ValueError(f"two alert rules are named {rule.name!r}; names must be unique")
            new[rule.name] = rule
        self._rules = new

    def add_rule(self, rule: AlertRule) -> None:
        """Add or replace one rule."""
        self._rules[rule.name] = rule

    def remove_rule(self, name: str) -> bool:
        """Drop a rule; its alerts resolve at the next evaluation."""
        return self._rules.pop(name, None) is not None

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts as plain data."""
        return [asdict(alert) for alert in self._alerts.values()]

    # -- evaluation --------------------------------------------------------------------

    def evaluate(self, now: float) -> list[AlertNotice]:
        """Evaluate every rule at time ``now``; returns firing and resolved notices."""
        notices: list[AlertNotice] = []
        seen: set[str] = set()
        for rule in self._rules.values():
            for metric, values, child in self.registry.select(rule.selector):
                labels = metric.labels_dict(values)
                fp = fingerprint(rule.name, metric.name, labels)
                seen.add(fp)
                value = series_value(
                    metric.name,
                    labels,
                    child,
                    rule.stat,
                    store=self.store,
                    window=rule.window,
                    now=now,
                )
                active, extra = (False, {}) if value is None else self._check(rule, fp, now, value)
                notice = self._transition(rule, fp, metric.name, labels, now, value, active, extra)
                if notice is not None:
                    notices.append(notice)
        for fp in [fp for fp in self._alerts if fp not in seen]:
            alert = self._alerts.pop(fp)
            if alert.state == "firing":  # its series or rule is gone
                notices.append(self._notice(RESOLVED_TOPIC, alert, now, alert.value))
        for models in (self._forecasters, self._detectors):
            for fp in [fp for fp in models if fp not in seen]:
                del models[fp]
        return notices

    def _check(
        self, rule: AlertRule, fp: str, now: float, value: float
    ) -> tuple[bool, dict[str, float | None]]:
        if rule.kind == "anomaly":
            assert rule.anomaly is not None
            spec = rule.anomaly
            detector = self._detectors.get(fp)
            if detector is None:
                detector = self._detectors[fp] = make_detector(
                    spec.method,
                    sensitivity=spec.sensitivity,
                    window=spec.window,
                    alpha=spec.alpha,
                    warmup=spec.warmup,
                    relearn=spec.relearn,
                )
            found = detector.update(value)
            score = found.score if math.isfinite(found.score) else None
            return found.anomaly, {"score": score, "expected": found.expected}
        if rule.kind == "predictive":
            assert rule.threshold is not None and rule.predict_within is not None
            model = self._forecasters.get(fp)
            if model is None:
                model = self._forecasters[fp] = HoltForecaster(
                    rule.forecast_alpha, rule.forecast_beta
                )
            model.update(now, value)
            eta = 0.0 if rule.compare(value) else model.time_to_reach(rule.threshold)
            active = eta is not None and eta <= rule.predict_within
            return active, {"eta_seconds": eta, "forecast": model.forecast(rule.predict_within)}
        return rule.compare(value), {}

    def _transition(
        self,
        rule: AlertRule,
        fp: str,
        metric: str,
        labels: dict[str, str],
        now: float,
        value: float | None,
        active: bool,
        extra: dict[str, float | None],
    ) -> AlertNotice | None:
        alert = self._alerts.get(fp)
        if not active:
            if alert is None:
                return None
            del self._alerts[fp]
            return (
                self._notice(RESOLVED_TOPIC, alert, now, value) if alert.state == "firing" else None
            )
        if alert is None:
            alert = self._alerts[fp] = _Alert(rule.name, fp, metric, labels, "pending", now)
        alert.value, alert.extra = value, extra
        if alert.state == "pending" and now - alert.active_since >= rule.for_:
            alert.state, alert.fired_at = "firing", now
            return self._notice(FIRING_TOPIC, alert, now, value)
        return None

    def _notice(self, topic: str, alert: _Alert, now: float, value: float | None) -> AlertNotice:
        rule = self._rules.get(alert.rule)
        labels = {**alert.labels, **(rule.labels if rule else {}), "alertname": alert.rule}
        data: dict[str, Any] = {
            "alert": alert.rule,
            "fingerprint": alert.fingerprint,
            "state": "firing" if topic == FIRING_TOPIC else "resolved",
            "metric": alert.metric,
            "labels": labels,
            "value": value,
            "active_since": alert.active_since,
            "fired_at": alert.fired_at,
            "resolved_at": None if topic == FIRING_TOPIC else now,
            **alert.extra,
        }
        if rule is not None:
            labels["severity"] = rule.severity
            context = {**alert.labels, "value": value, "threshold": rule.threshold}
            data.update(
                kind=rule.kind,
                severity=rule.severity,
                expr=rule.expr,
                stat=rule.stat,
                op=rule.op,
                threshold=rule.threshold,
                annotations={k: _render(v, context) for k, v in rule.annotations.items()},
            )
        return AlertNotice(topic, alert.fingerprint, data)

    # -- snapshots ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Pending and firing alerts as plain data, so a reload does not re-announce them."""
        return {"alerts": self.alerts()}

    def load(self, data: Mapping[str, Any]) -> None:
        """Restore alerts saved by `to_dict`."""
        for item in data.get("alerts", []):
            alert = _Alert(**item)
            self._alerts[alert.fingerprint] = alert
