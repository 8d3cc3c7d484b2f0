"""A run's state: the fold of its journal events. Nothing else decides what a run is.

Event types (journal ``type``; ``data`` as noted):

- ``run.started``      {id, workflow, version, definition, input, at}
- ``run.claimed``      {node, until}: this node advances the run until ``until``
- ``run.released``     {}: nobody needs to hold the run (it only waits for people)
- ``step.started``     {step, attempt, at}
- ``step.completed``   {step, output, at}
- ``step.failed``      {step, attempt, error, retry_at (None: for good), at}
- ``step.skipped``     {step, reason}
- ``approval.requested`` {step, approvers, deadline, stage}
- ``approval.decided`` {step, approved, by, comment, data, at}
- ``comp.started``     {step, attempt}
- ``comp.completed``   {step, output}
- ``comp.failed``      {step, attempt, error, retry_at (None: for good)}
- ``run.compensating`` {step, error}: a step failed for good; undo what completed
- ``run.cancelled``    {by, reason}
- ``run.finished``     {status, output, error}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TERMINAL", "RunState", "StepState", "fold"]

#: Run statuses after which nothing happens any more.
TERMINAL = frozenset({"completed", "failed", "compensated", "cancelled"})
#: Step statuses that count as done for the steps that need them.
STEP_DONE = frozenset({"completed", "skipped"})


@dataclass
class StepState:
    """One step of one run."""

    status: str = "pending"  # pending running retrying waiting completed skipped failed
    attempts: int = 0
    output: Any = None
    error: str | None = None
    started_at: float | None = None
    retry_at: float | None = None
    # Approval steps: who may decide, until when, and which stage (1 = escalated).
    approvers: list[str] = field(default_factory=list)
    deadline: float | None = None
    stage: int = 0
    decision: dict[str, Any] | None = None
    # Compensation: None (nothing to undo), pending, running, retrying, done, failed.
    comp: str | None = None
    comp_attempts: int = 0
    comp_retry_at: float | None = None
    comp_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "output": self.output,
            "attempts": self.attempts,
        }
        if self.error is not None:
            out["error"] = self.error
        if self.decision is not None:
            out["decision"] = self.decision
        if self.comp is not None:
            out["compensation"] = {
                "status": self.comp,
                "attempts": self.comp_attempts,
                "error": self.comp_error,
            }
        return out


@dataclass
class RunState:
    """One run, as its events say."""

    id: str = ""
    workflow: str = ""
    version: int = 0
    definition: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    status: str = "running"
    phase: str = "forward"  # forward | compensating
    steps: dict[str, StepState] = field(default_factory=dict)
    completion: list[str] = field(default_factory=list)  # step ids, in completion order
    output: Any = None
    error: str | None = None
    reason: str | None = None  # why it failed: step_failed, compensation_failed, ...
    owner: str | None = None
    lease_until: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0
    journal_version: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def step(self, step_id: str) -> StepState:
        state = self.steps.get(step_id)
        if state is None:
            state = self.steps[step_id] = StepState()
        return state

    def waiting(self) -> list[dict[str, Any]]:
        """The approvals this run waits for."""
        return [
            {
                "run": self.id,
                "workflow": self.workflow,
                "step": sid,
                "approvers": s.approvers,
                "deadline": s.deadline,
                "stage": s.stage,
            }
            for sid, s in self.steps.items()
            if s.status == "waiting"
        ]

    def to_json(self) -> dict[str, Any]:
        """The §11 run document."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "status": self.status,
            "steps": {sid: s.to_json() for sid, s in self.steps.items()},
            "output": self.output,
            "error": self.error,
            "reason": self.reason,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def summary(self) -> dict[str, Any]:
        """The read-model row of the run list."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "version": self.version,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "owner": self.owner,
            "lease_until": self.lease_until,
            "waiting": self.waiting(),
            "next_at": self.next_timer(),
        }

    def next_timer(self) -> float | None:
        """The earliest clock time at which the run has something to do by itself."""
        times = [
            t
            for s in self.steps.values()
            for t in (
                s.retry_at if s.status == "retrying" else None,
                s.deadline if s.status == "waiting" else None,
                s.comp_retry_at if s.comp == "retrying" else None,
            )
            if t is not None
        ]
        return min(times) if times else None


def fold(state: RunState, version: int, kind: str, data: dict[str, Any]) -> None:
    """Apply one event (journal ``version``) to ``state``."""
    state.journal_version = version
    at = data.get("at")
    if isinstance(at, int | float):
        state.updated_at = float(at)
    if kind == "run.started":
        state.id = data["id"]
        state.workflow = data["workflow"]
        state.version = data["version"]
        state.definition = data["definition"]
        state.input = data.get("input")
        state.created_at = state.updated_at
        for step in state.definition["steps"]:
            state.step(step["id"])
    elif kind == "run.claimed":
        state.owner = data["node"]
        state.lease_until = float(data["until"])
    elif kind == "run.released":
        state.owner = None
        state.lease_until = 0.0
    elif kind == "step.started":
        s = state.step(data["step"])
        s.status, s.attempts, s.started_at, s.retry_at = "running", data["attempt"], at, None
    elif kind == "step.completed":
        s = state.step(data["step"])
        s.status, s.output, s.error = "completed", data.get("output"), None
        state.completion.append(data["step"])
        if state.phase == "compensating" and _compensable(state, data["step"]):
            s.comp = "pending"
    elif kind == "step.failed":
        s = state.step(data["step"])
        s.error = data.get("error")
        s.retry_at = data.get("retry_at")
        s.status = "failed" if s.retry_at is None else "retrying"
    elif kind == "step.skipped":
        state.step(data["step"]).status = "skipped"
    elif kind == "approval.requested":
        s = state.step(data["step"])
        s.status, s.approvers, s.deadline = "waiting", data.get("approvers", []), data["deadline"]
        s.stage = data.get("stage", 0)
        state.status = "waiting"
    elif kind == "approval.decided":
        s = state.step(data["step"])
        decision = {k: data.get(k) for k in ("approved", "by", "comment", "at")}
        s.decision = decision
        s.deadline = None
        output = {"approved": bool(data["approved"]), "by": data.get("by")}
        output["comment"] = data.get("comment")
        if data.get("data") is not None:
            output["data"] = data["data"]
        s.output = output
        if data["approved"]:
            s.status = "completed"
            state.completion.append(data["step"])
        else:
            s.status, s.error = "failed", f"denied by {data.get('by') or 'nobody'}"
        state.status = "waiting" if state.waiting() else "running"
    elif kind == "comp.started":
        s = state.step(data["step"])
        s.comp, s.comp_attempts, s.comp_retry_at = "running", data["attempt"], None
    elif kind == "comp.completed":
        s = state.step(data["step"])
        s.comp, s.comp_error = "done", None
    elif kind == "comp.failed":
        s = state.step(data["step"])
        s.comp_error = data.get("error")
        s.comp_retry_at = data.get("retry_at")
        s.comp = "failed" if s.comp_retry_at is None else "retrying"
    elif kind == "run.compensating":
        state.phase = "compensating"
        state.status = "running"
        state.error = data.get("error")
        for sid in state.completion:
            if _compensable(state, sid):
                state.step(sid).comp = "pending"
    elif kind == "run.cancelled":
        state.status = "cancelled"
        state.error = data.get("reason") or f"cancelled by {data.get('by') or 'someone'}"
        state.reason = "cancelled"
    elif kind == "run.finished":
        state.status = data["status"]
        state.output = data.get("output")
        state.error = data.get("error", state.error)
        state.reason = data.get("reason")


def _compensable(state: RunState, step_id: str) -> bool:
    for step in state.definition.get("steps", ()):
        if step.get("id") == step_id:
            return step.get("compensate") is not None
    return False
