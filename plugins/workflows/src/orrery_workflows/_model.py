"""The workflow definition (DESIGN.md §11) as pydantic models.

Shape only; `_loader` adds what a schema cannot say (DAG, expressions) with line numbers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Approval", "Compensation", "Escalation", "Retry", "Step", "Workflow"]

NAME = r"^[a-z0-9_-]+$"
STEP_ID = r"^[A-Za-z_][A-Za-z0-9_-]*$"
TOPIC = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"


class _Strict(BaseModel):
    # A misspelt key in a workflow file is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Retry(_Strict):
    """Attempts of a step (1 = no retry) and the pause before each retry."""

    attempts: int = Field(1, ge=1, le=1000)
    backoff: float = Field(1.0, ge=0, le=86_400)  # seconds before the first retry
    factor: float = Field(2.0, ge=1, le=10)  # each later pause is this much longer
    max_backoff: float = Field(300.0, ge=0)

    def delay(self, attempt: int) -> float:
        """Pause after failed attempt ``attempt`` (1-based)."""
        return float(min(self.max_backoff, self.backoff * self.factor ** (attempt - 1)))


class Compensation(_Strict):
    """What undoes a completed step when the run fails later."""

    call: str = Field(pattern=TOPIC)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    retry: Retry = Retry(attempts=3)
    timeout: float = Field(30.0, gt=0)


class Escalation(_Strict):
    """The second approver group when the first lets the approval time out."""

    approvers: list[str] = Field(default_factory=list)
    timeout: float | None = Field(None, gt=0)
    on_timeout: Literal["approve", "deny"] = "deny"


class Approval(_Strict):
    """A human decision; the run waits (status ``waiting``) until it comes."""

    approvers: list[str] = Field(default_factory=list)
    timeout: float | None = Field(None, gt=0)
    on_timeout: Literal["approve", "deny", "escalate"] = "deny"
    escalate: Escalation | None = None

    @model_validator(mode="after")
    def _escalation_given(self) -> Approval:
        if self.on_timeout == "escalate" and (self.escalate is None or self.timeout is None):
            raise ValueError("on_timeout: escalate needs a timeout and an 'escalate:' group")
        return self


class Step(_Strict):
    """One node of the DAG: exactly one of call, agent, task or approval."""

    id: str = Field(pattern=STEP_ID, max_length=100)
    call: str | None = Field(None, pattern=TOPIC)
    agent: dict[str, Any] | None = None
    task: str | None = None
    approval: Approval | None = None
    hitl: bool = False
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    needs: list[str] = Field(default_factory=list)
    when: str | None = None
    compensate: Compensation | None = None
    retry: Retry = Retry()
    timeout: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        if self.hitl and self.approval is None:
            object.__setattr__(self, "approval", Approval())
        kinds = [k for k in ("call", "agent", "task", "approval") if getattr(self, k) is not None]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            raise ValueError(
                f"step {self.id!r} needs exactly one of call, agent, task, approval "
                f"(or hitl: true); found {found}"
            )
        return self

    @property
    def kind(self) -> str:
        for kind in ("call", "agent", "task", "approval"):
            if getattr(self, kind) is not None:
                return kind
        raise AssertionError("validated to have one kind")


class Workflow(_Strict):
    """A workflow definition; ``version`` tells edits of the same name apart."""

    name: str = Field(pattern=NAME, max_length=100)
    version: int = Field(1, ge=1)
    description: str = ""
    inputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)
    max_parallel: int = Field(8, ge=1, le=1000)  # steps of one run in flight at once

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def to_json(self) -> dict[str, Any]:
        """The definition as stored and served (defaults left out, version kept)."""
        body = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        return {"name": self.name, "version": self.version, **body}
