"""Request bodies (validated with pydantic) and response shapes (for the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

__all__ = [
    "ConfigBody",
    "ConfigSourceOut",
    "ErrorOut",
    "EventAck",
    "HealthOut",
    "InstallOut",
    "InstallRequest",
    "LayerOut",
    "LogRecordOut",
    "LogsOut",
    "PluginOut",
    "PublishRequest",
    "ReadyOut",
    "RequestBody",
    "RequestReply",
    "RescanOut",
    "StatusOut",
]

_STATES = Literal[
    "discovered", "resolved", "starting", "active", "stopping", "stopped", "failed", "uninstalled"
]


class _Body(BaseModel):
    # Unknown keys are a typo more often than not: say so instead of ignoring them.
    model_config = ConfigDict(extra="forbid")


class PublishRequest(_Body):
    """``POST /v1/events``: publish one event on the bus."""

    topic: str = Field(
        min_length=1, max_length=1024, description="NATS-style topic, e.g. orders.created"
    )
    data: Any = Field(None, description="Any JSON value: the event's data")
    key: str | None = Field(
        None, max_length=1024, description="Partition/ordering key (CloudEvents subject)"
    )
    headers: dict[str, str] | None = Field(
        None, description="CloudEvents extension attributes: lower-case letters and digits"
    )


class RequestBody(_Body):
    """``POST /v1/requests``: publish with a reply inbox and wait for the reply."""

    topic: str = Field(
        min_length=1, max_length=1024, description="NATS-style topic, e.g. greet.hello"
    )
    data: Any = Field(None, description="Any JSON value: the request's data")
    timeout: float = Field(5.0, gt=0, le=300, description="Seconds to wait for the reply")


class RequestReply(BaseModel):
    """The first reply to a request."""

    topic: str
    reply: Any = Field(description="The reply's data (any JSON value)")
    elapsed_ms: float


class InstallRequest(_Body):
    """``POST /v1/plugins``: pip-install a distribution, then rescan entry points."""

    spec: str = Field(
        min_length=1,
        max_length=500,
        description="A pip requirement or path, e.g. orrery-metrics>=0.1",
    )


class ConfigBody(RootModel[dict[str, Any]]):
    """``PUT /v1/plugins/{name}/config``: the complete ``[plugins.<name>]`` table."""


class LogRecordOut(BaseModel):
    seq: int
    time: float = Field(description="Epoch seconds")
    level: str
    plugin: str
    logger: str
    message: str


class LogsOut(BaseModel):
    records: list[LogRecordOut]
    next: int = Field(description="Pass as ?after= to get only newer records")


class ErrorOut(BaseModel):
    """Every error answer: the status again, a sentence saying what to do, the field."""

    status: int
    error: str
    field: str | None = None


class PluginOut(BaseModel):
    name: str
    version: str
    state: _STATES
    source: str
    error: str | None
    enabled: bool = True
    requires: dict[str, str] = {}
    sandbox: bool = False
    description: str = Field("", description="What the plugin does (class or distribution)")
    author: str = Field("", description="Who wrote it (class or distribution)")


class ConfigSourceOut(BaseModel):
    """One effective configuration value and where it came from."""

    value: Any
    source: Literal["environment", "runtime", "file", "config", "default"]
    variable: str | None = Field(None, description="The environment variable, if it is set")


class EventAck(BaseModel):
    """The event as published: its id can be used as ``Last-Event-ID`` later."""

    id: str
    type: str
    source: str
    time: str


class RescanOut(BaseModel):
    """What a rescan changed (e.g. ``{"added": [...], "removed": [...]}``) and the result."""

    changes: dict[str, list[str]]
    plugins: list[PluginOut]


class InstallOut(RescanOut):
    """pip's output lines, then the rescan."""

    output: list[str]


class LayerOut(BaseModel):
    name: str
    available: bool
    mechanism: str
    detail: str


class StatusOut(BaseModel):
    node_id: str
    version: str
    url: str
    uptime_s: float
    started_at: float
    bus_backend: str
    storage_backend: str
    plugins: dict[str, list[str]] = Field(description="Plugin names grouped by state")
    sandbox: list[LayerOut] | Literal["unknown"] = Field(
        description="Isolation layers this host offers, or 'unknown' while not probed"
    )
    health: dict[str, dict[str, Any]] = Field(description="orrery_health of each active plugin")
    streams: int = Field(description="Open SSE/WebSocket event streams")
    replay: dict[str, int] = Field(
        description="Replay buffer: events and bytes held, max_events and max_bytes"
    )
    connections: dict[str, Any] | None = Field(
        None, description="Open connections, their limit, refusals and header timeouts"
    )


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    ready: bool
    reason: str | None = None
