"""The metrics plugin's remote API: one command table, mounted as bus request topics
(``metrics.<command>``) and as HTTP routes under ``/v1/plugins/metrics/``.

Each command takes one JSON object (HTTP: path parameters, query parameters and the
body merged) and calls `MetricsService`. Over HTTP, unknown names answer 404 and bad
input 400 with a message saying what to send; documents (Prometheus text, CSV) are
answered as themselves. Over the bus, errors come back as ``{"error": {"type",
"message"}}`` and documents as ``{"content_type", "text"}``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from orrery.sdk import Bus, Event, HttpError, HttpRequest, HttpResponse, HttpRoutes

from ._service import MetricsService
from .errors import MetricsError

__all__ = ["ROUTES", "TOPIC_PREFIX", "Commands"]

#: Request topics are ``metrics.<command>`` (e.g. ``metrics.series``).
TOPIC_PREFIX = "metrics"

Payload = Mapping[str, Any]
Command = Callable[[Payload], Awaitable[Any]]

#: ``(method, path, command)``: where each command is served over HTTP.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/metrics", "scrape"),
    ("GET", "/metrics/{name}", "metric"),
    ("GET", "/export", "export"),
    ("GET", "/series", "series"),
    ("GET", "/series/aggregate", "aggregate"),
    ("GET", "/forecast", "forecast"),
    ("GET", "/alerts", "alerts"),
    ("GET", "/anomaly", "anomaly"),
    ("POST", "/anomaly", "anomaly"),
    ("GET", "/dashboards", "dashboards"),
    ("GET", "/dashboards/{name}", "dashboard"),
    ("PUT", "/dashboards/{name}", "save_dashboard"),
    ("DELETE", "/dashboards/{name}", "delete_dashboard"),
)


class _Text:
    """A command's answer that is a document, not JSON."""

    def __init__(self, content_type: str, text: str | bytes) -> None:
        self.content_type = content_type
        self.text = text


def _number(payload: Payload, name: str, default: float | None) -> float | None:
    raw = payload.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        raise ValueError(f"{name} must be a number, not {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(
            f"query parameter {name}={raw!r} is not a number; send seconds, e.g. {name}=60"
        ) from None
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, not NaN")
    return value


def _float(payload: Payload, name: str, default: float) -> float:
    value = _number(payload, name, default)
    assert value is not None
    return value


def _int(payload: Payload, name: str, default: int) -> int:
    value = _float(payload, name, float(default))
    if not value.is_integer():
        raise ValueError(f"{name} must be a whole number, got {payload.get(name)!r}")
    return int(value)


def _text(payload: Payload, name: str) -> str | None:
    raw = payload.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise ValueError(f"{name} must be a string, got {raw!r}")
    return raw


def _name(payload: Payload) -> str:
    name = _text(payload, "name")
    if name is None:
        raise ValueError('give the name as "name"')
    return name


def _history(raw: Any) -> list[float] | None:
    if raw is None or raw == "":
        return None
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise ValueError("history must be a list of numbers (or comma-separated: 1,2,3)")
    try:
        return [float(v) for v in items]
    except (TypeError, ValueError):
        raise ValueError(f"history must hold numbers only, got {raw!r}") from None


class Commands:
    """One handler per command, each taking a JSON object."""

    def __init__(self, service: MetricsService) -> None:
        self.service = service
        self.table: dict[str, Command] = {
            "scrape": self._scrape,
            "metric": self._metric,
            "export": self._export,
            "series": self._series,
            "aggregate": self._aggregate,
            "forecast": self._forecast,
            "alerts": self._alerts,
            "anomaly": self._anomaly,
            "dashboards": self._dashboards,
            "dashboard": self._dashboard,
            "save_dashboard": self._save_dashboard,
            "delete_dashboard": self._delete_dashboard,
        }

    async def execute(self, command: str, payload: Any) -> Any:
        """Run ``command``; its answer, or the service's error."""
        handler = self.table.get(command)
        if handler is None:
            raise LookupError(f"unknown command {command!r}; use {sorted(self.table)}")
        return await handler(payload if isinstance(payload, Mapping) else {})

    # -- the commands ----------------------------------------------------------------

    async def _scrape(self, payload: Payload) -> _Text:
        content_type, body = self.service.scrape()
        return _Text(content_type, body)

    async def _metric(self, payload: Payload) -> Any:
        return self.service.metric(_name(payload))

    def _range(self, payload: Payload) -> tuple[float, float]:
        return _float(payload, "start", -math.inf), _float(payload, "end", math.inf)

    async def _export(self, payload: Payload) -> Any:
        start, end = self._range(payload)
        answer = self.service.export(
            _text(payload, "format") or "json",
            selector=_text(payload, "selector"),
            start=start,
            end=end,
        )
        return _Text(*answer) if isinstance(answer, tuple) else answer

    async def _series(self, payload: Payload) -> Any:
        start, end = self._range(payload)
        series = self.service.series(
            _text(payload, "selector"),
            _text(payload, "stat"),
            start,
            end,
            _number(payload, "resolution", None),
        )
        return {"series": series}

    async def _aggregate(self, payload: Payload) -> Any:
        start, end = self._range(payload)
        selector, stat = _text(payload, "selector"), _text(payload, "stat")
        return {"series": self.service.aggregate(selector, stat, start, end)}

    async def _forecast(self, payload: Payload) -> Any:
        return self.service.forecast(
            _text(payload, "selector"),
            _text(payload, "stat"),
            _float(payload, "horizon", 3_600.0),
            _number(payload, "threshold", None),
        )

    async def _alerts(self, payload: Payload) -> Any:
        return self.service.alerts()

    async def _anomaly(self, payload: Payload) -> Any:
        value = _number(payload, "value", None)
        if value is None:
            raise ValueError("give the value to check as value, e.g. value=340")
        return self.service.check_anomaly(
            value,
            selector=_text(payload, "selector"),
            stat=_text(payload, "stat") or "value",
            history=_history(payload.get("history")),
            method=_text(payload, "method") or "zscore",  # type: ignore[arg-type]
            sensitivity=_float(payload, "sensitivity", 1.0),
            window=_int(payload, "window", 60),
            alpha=_float(payload, "alpha", 0.1),
            warmup=_int(payload, "warmup", 10),
        )

    async def _dashboards(self, payload: Payload) -> Any:
        return {"dashboards": self.service.dashboard_list()}

    async def _dashboard(self, payload: Payload) -> Any:
        return self.service.dashboard(_name(payload))

    async def _save_dashboard(self, payload: Payload) -> Any:
        definition = {k: v for k, v in payload.items() if k != "name"}
        return await self.service.save_dashboard(_name(payload), definition)

    async def _delete_dashboard(self, payload: Payload) -> Any:
        return {"deleted": await self.service.delete_dashboard(_name(payload))}

    # -- mounting --------------------------------------------------------------------

    def subscribe(self, bus: Bus) -> None:
        """Answer requests on ``metrics.<command>``."""
        for command in self.table:
            bus.subscribe(f"{TOPIC_PREFIX}.{command}", self._bus_handler(command))

    def _bus_handler(self, command: str) -> Callable[[Event], Awaitable[Any]]:
        async def handle(event: Event) -> Any:
            try:
                answer = await self.execute(command, event.data)
            except (MetricsError, ValueError, LookupError) as e:
                return {"error": {"type": type(e).__name__, "message": str(e)}}
            if isinstance(answer, _Text):
                text = answer.text
                return {
                    "content_type": answer.content_type,
                    "text": text.decode("utf-8") if isinstance(text, bytes) else text,
                }
            return answer

        return handle

    def mount(self, http: HttpRoutes) -> None:
        """Serve every command at its route in `ROUTES`."""
        for method, path, command in ROUTES:
            http.route(method, path, self._http_handler(command))

    def _http_handler(self, command: str) -> Callable[[HttpRequest], Awaitable[Any]]:
        async def handle(request: HttpRequest) -> Any:
            payload: dict[str, Any] = dict(request.query)
            if request.method in ("POST", "PUT"):
                body = await request.json()
                if body is not None and not isinstance(body, dict):
                    raise HttpError(400, "send a JSON object as the body")
                payload.update(body or {})
            payload.update(request.params)
            try:
                answer = await self.execute(command, payload)
            except LookupError as e:
                raise HttpError(404, str(e)) from e
            except (MetricsError, ValueError) as e:
                raise HttpError(400, str(e)) from e
            if isinstance(answer, _Text):
                return HttpResponse(answer.text, content_type=answer.content_type)
            return answer

        return handle
