"""Errors of the workflows plugin; all derive from `WorkflowsError`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import OrreryError

__all__ = [
    "DefinitionError",
    "ExpressionError",
    "InvalidDecision",
    "InvalidInput",
    "RunFinished",
    "UnknownRun",
    "UnknownWorkflow",
    "WorkflowsError",
]


class WorkflowsError(OrreryError):
    """Base class of every error of the workflows plugin."""


class InvalidInput(WorkflowsError, ValueError):
    """An argument was refused; ``field`` names it (HTTP answers 400)."""

    def __init__(self, field: str, value: Any, hint: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {hint}")
        self.field = field
        self.value = value


class ExpressionError(WorkflowsError, ValueError):
    """A ``${{ }}`` expression that does not parse or refers to something unknown.

    ``column`` is 1-based within the expression text."""

    def __init__(self, text: str, column: int, reason: str) -> None:
        super().__init__(f"expression {text!r}, column {column}: {reason}")
        self.text = text
        self.column = column
        self.reason = reason


class DefinitionError(WorkflowsError, ValueError):
    """A workflow file that is refused; ``line`` (1-based, None when unknown) and
    ``reason`` say where and why."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


class UnknownWorkflow(WorkflowsError, LookupError):
    """No workflow by that name (or version); HTTP answers 404."""

    def __init__(self, name: str, version: int | None = None) -> None:
        what = name if version is None else f"{name} version {version}"
        super().__init__(f"no workflow {what}; list them with `orrery workflows ls`")
        self.name = name


class UnknownRun(WorkflowsError, LookupError):
    """No run with that id; HTTP answers 404."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run {run_id!r}; list runs with `orrery workflows runs`")
        self.run_id = run_id


class RunFinished(WorkflowsError):
    """The run is already terminal, so it cannot be cancelled or decided (HTTP 409)."""

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} is already {status}")
        self.run_id = run_id
        self.status = status


class InvalidDecision(WorkflowsError):
    """An approval decision for a step that is not waiting for one (HTTP 409)."""

    def __init__(self, run_id: str, step: str, reason: str) -> None:
        super().__init__(f"run {run_id} step {step}: {reason}")
        self.run_id = run_id
        self.step = step
