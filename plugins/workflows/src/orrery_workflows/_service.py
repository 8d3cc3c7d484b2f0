"""The facade other plugins get from ``ctx.services.get(WORKFLOWS)``."""

from __future__ import annotations

import asyncio
from typing import Any

from orrery.sdk import Event

from ._engine import Engine
from ._loader import load_yaml
from ._registry import Registry
from ._state import TERMINAL
from .errors import InvalidInput

__all__ = ["WorkflowsService"]

_STATUSES = ("running", "waiting", "completed", "failed", "compensated", "cancelled")


class WorkflowsService:
    """Workflows (define, list, validate) and runs (start, inspect, decide, cancel)."""

    def __init__(self, engine: Engine, registry: Registry) -> None:
        self._engine = engine
        self._registry = registry

    # -- definitions ---------------------------------------------------------------

    async def put_workflow(
        self, definition: str | dict[str, Any], source: str = "api"
    ) -> dict[str, Any]:
        """Store a workflow (YAML text or a mapping); answers ``{name, version}``. The
        same content as the latest version changes nothing."""
        if isinstance(definition, str):
            workflow = await self._registry.put_text(definition, source)
        else:
            workflow = await self._registry.put_data(definition, source)
        return {"name": workflow.name, "version": workflow.version}

    def validate(self, text: str, source: str = "api") -> dict[str, Any]:
        """Check a workflow file without storing it; raises `DefinitionError`."""
        workflow = load_yaml(text, source)
        return {
            "ok": True,
            "name": workflow.name,
            "version": workflow.version,
            "steps": [s.id for s in workflow.steps],
        }

    def workflows(self) -> list[dict[str, Any]]:
        """The latest version of every workflow."""
        return [
            {
                "name": w.name,
                "version": w.version,
                "steps": len(w.steps),
                "description": w.description,
            }
            for w in self._registry.names()
        ]

    def workflow(self, name: str, version: int | None = None) -> dict[str, Any]:
        """A workflow's definition (the latest version unless ``version``)."""
        return self._registry.get(name, version).to_json()

    # -- runs ------------------------------------------------------------------------

    async def start(self, workflow: str, input: Any = None, version: int | None = None) -> str:
        """Start a run of ``workflow``; answers the run id at once."""
        return await self._engine.start_run(workflow, input, version)

    async def run(self, run_id: str) -> dict[str, Any]:
        """``{id, workflow, status, steps: {ID: {status, output, attempts}}, output, error}``."""
        return (await self._engine.load(run_id)).to_json()

    async def history(self, run_id: str) -> list[dict[str, Any]]:
        """The run's journal: ``[{version, type, data}]``, oldest first (the audit trail
        every state of the run is folded from)."""
        return await self._engine.history(run_id)

    async def wait(
        self, run_id: str, timeout: float = 60.0, *, settled: bool = True
    ) -> dict[str, Any]:
        """The run once it is terminal (or, with ``settled``, waiting for a person)."""
        changed = asyncio.Event()

        def on_event(event: Event) -> None:
            if isinstance(event.data, dict) and event.data.get("run") == run_id:
                changed.set()

        sub = self._engine.bus.subscribe("workflow.>", on_event)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed.clear()
                    doc = await self.run(run_id)
                    if doc["status"] in TERMINAL or (settled and doc["status"] == "waiting"):
                        return doc
                    await changed.wait()
        finally:
            sub.unsubscribe()

    async def runs(
        self, workflow: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The run list (read model), newest first."""
        if status is not None and status not in _STATUSES:
            raise InvalidInput("status", status, f"use one of {', '.join(_STATUSES)}")
        rows = [
            {
                k: row.get(k)
                for k in ("id", "workflow", "version", "status", "created_at", "updated_at")
            }
            for row in await self._engine.rows()
            if (workflow is None or row.get("workflow") == workflow)
            and (status is None or row.get("status") == status)
        ]
        rows.sort(key=lambda r: str(r["id"]), reverse=True)
        return rows[:limit]

    async def approvals(self, workflow: str | None = None) -> list[dict[str, Any]]:
        """Pending approvals: ``{run, workflow, step, approvers, deadline, stage}``."""
        return [
            approval
            for row in await self._engine.rows()
            if row.get("status") == "waiting"
            for approval in row.get("waiting") or []
            if workflow is None or approval.get("workflow") == workflow
        ]

    async def decide(
        self,
        run_id: str,
        step: str,
        approved: bool,
        by: str | None = None,
        comment: str | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        """Approve or deny a waiting approval step; the run resumes."""
        state = await self._engine.decide(run_id, step, approved, by, comment, data)
        return state.to_json()

    async def cancel(
        self, run_id: str, by: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """Cancel a run that has not finished (no compensation runs)."""
        return (await self._engine.cancel(run_id, by, reason)).to_json()
