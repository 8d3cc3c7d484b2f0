"""Settings of the workflows plugin: ``[plugins.workflows]`` in orrery.toml."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Settings"]


class Settings(BaseModel):
    """Validated by the kernel; a bad value fails the plugin with the field named."""

    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")

    #: Folders of workflow files (*.yaml, *.yml), re-read when a file changes.
    dirs: list[Path] = Field(default_factory=list)
    #: Seconds a node holds a run it advances; another node takes over a run whose
    #: lease ran out (its node died). Renewed at half time while the run is busy.
    lease: float = Field(30.0, gt=0, le=86_400)
    #: Real seconds between sweeps for runs nobody advances, timers and changed files.
    poll_interval: float = Field(1.0, gt=0, le=3600)
    #: This node's name in leases (default: the kernel's node id).
    node_id: str | None = Field(None, min_length=1, max_length=200)
