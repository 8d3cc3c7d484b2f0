"""The scheduler's settings: ``[plugins.scheduler]`` in orrery.toml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["QueueSettings", "SchedulerConfig"]


class QueueSettings(BaseModel):
    """Per-queue settings."""

    model_config = ConfigDict(extra="forbid")

    #: Tasks of this queue running at once on this node (None: only the global limit).
    concurrency: int | None = Field(None, ge=1)


class SchedulerConfig(BaseModel):
    """Settings of the scheduler plugin."""

    model_config = ConfigDict(extra="forbid")

    #: "journal": tasks survive restarts and nodes share them; "memory": nothing is kept.
    persistence: Literal["journal", "memory"] = "journal"
    #: Journal stream suffix: kernels with the same storage and cluster share one queue.
    cluster: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$")
    #: This node's id (default: the kernel's node id).
    node_id: str | None = None
    #: Labels of this node for task placement (``nodes=``/``affinity=`` match them).
    node_labels: list[str] = []
    #: Tasks running at once on this node.
    concurrency: int = Field(100, ge=1)
    #: Settings per queue name (queues not listed use the defaults).
    queues: dict[str, QueueSettings] = {}
    #: Queue of tasks added without ``queue=``.
    default_queue: str = Field("default", min_length=1)
    #: Named resources this node offers (e.g. {"cpu": 8}); tasks' ``resources`` use them.
    capacity: dict[str, float] = {}
    #: Cluster-wide resource limits per task group, e.g. {"team-a": {"cpu": 4}}.
    quotas: dict[str, dict[str, float]] = {}
    #: Seconds of waiting that raise a task by one priority level (0: no aging).
    aging: float = Field(30.0, ge=0)
    #: Retries a task gets unless its function or the caller says otherwise.
    default_retries: int = Field(3, ge=0)
    #: Seconds before the first retry; each further retry waits twice as long.
    backoff: float = Field(1.0, ge=0)
    #: Longest wait between two retries, in seconds.
    backoff_max: float = Field(300.0, ge=0)
    #: Fraction of a retry's wait randomly taken off (0: none), so retries spread out.
    jitter: float = Field(0.5, ge=0, le=1)
    #: Finished tasks kept for inspection (and idempotency keys remembered).
    keep_finished: int = Field(10_000, ge=0)
    #: Seconds between checks of the shared journal for other nodes' work.
    poll_interval: float = Field(0.05, gt=0)
    #: Seconds without a heartbeat after which another node's running tasks are re-queued.
    lease: float = Field(30.0, gt=0)
    #: Operations between journal snapshots (bounds restart time).
    snapshot_every: int = Field(50_000, ge=100)
    #: Seconds operations stay in the journal after a snapshot covers them; then they
    #: and older snapshots are deleted (bounds disk use). A node that falls further
    #: behind stops scheduling until restarted. ``None`` keeps everything.
    journal_retention: float | None = Field(3600.0, ge=0)
    #: Seconds running tasks get to finish at shutdown before they are stopped and
    #: re-queued.
    shutdown_grace: float = Field(2.0, ge=0)
    #: Only add tasks whose function is registered on this node (catches typos).
    require_handler: bool = True
    #: Publish task.* lifecycle events on the bus.
    events: bool = True
