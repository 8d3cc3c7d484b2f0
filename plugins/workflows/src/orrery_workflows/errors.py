"""Errors of the workflows plugin; all derive from `WorkflowsError`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import OrreryError

__all__ = ["InvalidInput", "WorkflowsError"]


class WorkflowsError(OrreryError):
    """Base class of every error of the workflows plugin."""


class InvalidInput(WorkflowsError, ValueError):
    """An argument was refused; ``field`` names it (HTTP answers 400)."""

    def __init__(self, field: str, value: Any, hint: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {hint}")
        self.field = field
        self.value = value
