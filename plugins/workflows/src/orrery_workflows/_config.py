"""Settings of the workflows plugin: ``[plugins.workflows]`` in orrery.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Settings"]


class Settings(BaseModel):
    """Validated by the kernel; a bad value fails the plugin with the field named."""

    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")

    #: What ``ping`` answers with (the caller's name is appended when given).
    reply: str = Field("pong", min_length=1, max_length=200)
