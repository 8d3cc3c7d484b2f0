"""The engine: runs as journal streams, their drivers on this node, the sweeper that
picks up runs nobody advances (after a restart, a dead node's lease, a timer), and the
read model (one store row per run) behind the run list and the pending approvals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from orrery.sdk import Bus, Clock, Journal, Store, WrongExpectedVersion, new_event_id

from ._config import Settings
from ._driver import RunDriver
from ._model import Step, Workflow
from ._registry import Registry
from ._state import RunState, fold
from .errors import InvalidDecision, InvalidInput, RunFinished, UnknownRun

__all__ = ["Engine"]

_RUN_ROW = "run:"
#: Journal event type -> bus topic (documented in docs/workflows.md).
_TOPICS = {
    "run.started": "workflow.run.started",
    "run.compensating": "workflow.run.compensating",
    "run.cancelled": "workflow.run.cancelled",
    "step.started": "workflow.step.started",
    "step.completed": "workflow.step.completed",
    "step.skipped": "workflow.step.skipped",
    "approval.requested": "workflow.approval.requested",
    "approval.decided": "workflow.approval.decided",
    "comp.started": "workflow.step.compensating",
    "comp.completed": "workflow.step.compensated",
}
_APPEND_TRIES = 20


class Engine:
    """Starts, advances, decides and cancels runs; shares them safely with other nodes
    through optimistic appends and a lease per run."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        journal: Journal,
        store: Store,
        bus: Bus,
        clock: Clock,
        node: str,
        log: logging.Logger,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.journal = journal
        self.store = store
        self.bus = bus
        self.clock = clock
        self.node = node
        self.log = log
        self.drivers: dict[str, asyncio.Task[None]] = {}
        self.wakes: dict[str, asyncio.Event] = {}
        self.sweep_wake = asyncio.Event()
        self._next_sweep: float | None = None
        self.sweeper: asyncio.Task[None] | None = None
        self.stopping = False

    def stream(self, run_id: str) -> str:
        return f"run.{run_id}"

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self.sweep()
        self.sweeper = asyncio.create_task(self._sweep_forever(), name="workflows sweeper")

    async def stop(self) -> None:
        self.stopping = True
        tasks = list(self.drivers.values())
        if self.sweeper is not None:
            tasks.append(self.sweeper)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.drivers.clear()

    async def _sweep_forever(self) -> None:
        while True:
            await self.clock.wait(self.sweep_wake, self._next_sweep, self.settings.poll_interval)
            self.sweep_wake.clear()
            try:
                await self.registry.scan_dirs(self.settings.dirs)
                await self.sweep()
            except Exception:  # noqa: BLE001 - keep sweeping; a storage hiccup passes
                self.log.exception("workflow sweep failed; trying again")

    async def sweep(self) -> None:
        """Drive every unfinished run that needs it and that nobody else holds."""
        now = self.clock.now()
        timers: list[float] = []
        async for key, row in self.store.scan(_RUN_ROW):
            run_id = key[len(_RUN_ROW) :]
            if row.get("status") in ("completed", "failed", "compensated", "cancelled"):
                continue
            if run_id in self.drivers:
                continue
            if row.get("status") == "starting":
                if await self.journal.version(self.stream(run_id)) == 0:
                    await self.store.delete(key)  # never started: the caller got no id
                    continue
            owner, lease = row.get("owner"), float(row.get("lease_until") or 0)
            next_at = row.get("next_at")
            held_elsewhere = owner is not None and owner != self.node and lease > now
            if held_elsewhere:
                timers.append(lease)
                continue
            released = owner is None and row.get("status") == "waiting"
            if released and (next_at is None or next_at > now):
                if next_at is not None:
                    timers.append(next_at)
                continue
            self.kick(run_id)
        self._next_sweep = min(timers) if timers else None

    # -- journal and read model --------------------------------------------------------

    def apply(self, state: RunState, version: int, kind: str, data: Any) -> None:
        fold(state, version, kind, data if isinstance(data, dict) else {})

    async def load(self, run_id: str) -> RunState:
        state = RunState()
        async for event in self.journal.read(self.stream(run_id)):
            self.apply(state, event.version, event.type, event.data)
        if state.journal_version == 0:
            raise UnknownRun(run_id)
        return state

    async def history(self, run_id: str) -> list[dict[str, Any]]:
        events = [
            {"version": e.version, "type": e.type, "data": e.data}
            async for e in self.journal.read(self.stream(run_id))
        ]
        if not events:
            raise UnknownRun(run_id)
        return events

    async def store_row(self, state: RunState) -> None:
        await self.store.put(_RUN_ROW + state.id, state.summary())

    async def appended(self, state: RunState, events: list[dict[str, Any]]) -> None:
        """After a successful append: the read-model row, then the bus events."""
        await self.store_row(state)
        for event in events:
            await self._publish(state, event["type"], event["data"])

    async def _publish(self, state: RunState, kind: str, data: dict[str, Any]) -> None:
        base = {"run": state.id, "workflow": state.workflow, "version": state.version}
        topic = _TOPICS.get(kind)
        if kind == "step.failed":
            topic = "workflow.step.retrying" if data.get("retry_at") else "workflow.step.failed"
        elif kind == "comp.failed":
            final = data.get("retry_at") is None
            topic = "workflow.step.compensation_" + ("failed" if final else "retrying")
        elif kind == "run.finished":
            topic = f"workflow.run.{data['status']}"
            if data.get("reason") == "compensation_failed":
                alert = {**base, "error": data.get("error"), "reason": "compensation_failed"}
                await self.bus.publish("workflow.run.compensation_failed", alert, key=state.id)
        if topic is None:
            return
        payload = {**base, **{k: v for k, v in data.items() if k != "definition"}}
        await self.bus.publish(topic, payload, key=state.id)
        if kind == "approval.requested" and state.status == "waiting":
            await self.bus.publish(
                "workflow.run.waiting", {**base, "step": data["step"]}, key=state.id
            )

    # -- runs ------------------------------------------------------------------------

    def kick(self, run_id: str) -> None:
        """Make sure a driver advances ``run_id`` on this node (wake it if there is one)."""
        if self.stopping:
            return
        wake = self.wakes.setdefault(run_id, asyncio.Event())
        wake.set()
        current = self.drivers.get(run_id)
        if current is None or current.done():
            task = asyncio.create_task(self._drive(run_id, wake), name=f"workflow run {run_id}")
            self.drivers[run_id] = task

    async def _drive(self, run_id: str, wake: asyncio.Event) -> None:
        try:
            await RunDriver(self, await self.load(run_id), wake).run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one broken run must not stop the others
            self.log.exception("run %s: the driver stopped; the sweeper retries it", run_id)
        finally:
            if self.drivers.get(run_id) is asyncio.current_task():
                del self.drivers[run_id]
                self.wakes.pop(run_id, None)

    async def start_run(self, name: str, data: Any, version: int | None = None) -> str:
        workflow = self.registry.get(name, version)
        data = {} if data is None else data
        _check_input(workflow, data)
        run_id = new_event_id()
        # The row first: a crash between it and the append leaves a row the sweeper
        # deletes (no journal); the other way round would leave an unlisted run.
        await self.store.put(_RUN_ROW + run_id, {"id": run_id, "status": "starting"})
        now = self.clock.now()
        events: list[dict[str, Any]] = [
            {
                "type": "run.started",
                "data": {
                    "id": run_id,
                    "workflow": workflow.name,
                    "version": workflow.version,
                    "definition": workflow.to_json(),
                    "input": data,
                    "at": now,
                },
            },
            {
                "type": "run.claimed",
                "data": {"node": self.node, "until": now + self.settings.lease},
            },
        ]
        await self.journal.append(self.stream(run_id), events, expected_version=0)
        state = RunState()
        for i, event in enumerate(events, 1):
            self.apply(state, i, event["type"], event["data"])
        await self.appended(state, events)
        self.kick(run_id)
        return run_id

    async def _append_outside(
        self, run_id: str, make: Callable[[RunState], list[dict[str, Any]]]
    ) -> RunState:
        """Append what ``make`` decides from the latest state (re-read on conflict)."""
        for _ in range(_APPEND_TRIES):
            state = await self.load(run_id)
            events = make(state)
            try:
                version = await self.journal.append(
                    self.stream(run_id), events, expected_version=state.journal_version
                )
            except WrongExpectedVersion:
                continue
            for i, event in enumerate(events):
                self.apply(state, version - len(events) + 1 + i, event["type"], event["data"])
            await self.appended(state, events)
            self.kick(run_id)
            return state
        raise TimeoutError(f"run {run_id} changes too fast to append to; try again")

    async def decide(
        self,
        run_id: str,
        step: str,
        approved: bool,
        by: str | None,
        comment: str | None = None,
        data: Any = None,
    ) -> RunState:
        if not isinstance(approved, bool):
            raise InvalidInput("approved", approved, "give true or false")
        now = self.clock.now()

        def make(state: RunState) -> list[dict[str, Any]]:
            if state.terminal:
                raise RunFinished(run_id, state.status)
            if step not in state.steps:
                raise InvalidDecision(run_id, step, "no such step in this run")
            if state.steps[step].status != "waiting":
                status = state.steps[step].status
                raise InvalidDecision(run_id, step, f"not waiting for a decision (it is {status})")
            decision = {
                "step": step,
                "approved": approved,
                "by": by,
                "comment": comment,
                "data": data,
                "at": now,
            }
            return [{"type": "approval.decided", "data": decision}]

        return await self._append_outside(run_id, make)

    async def cancel(self, run_id: str, by: str | None, reason: str | None = None) -> RunState:
        def make(state: RunState) -> list[dict[str, Any]]:
            if state.terminal:
                raise RunFinished(run_id, state.status)
            return [
                {
                    "type": "run.cancelled",
                    "data": {"by": by, "reason": reason, "at": self.clock.now()},
                }
            ]

        return await self._append_outside(run_id, make)

    async def rows(self) -> list[dict[str, Any]]:
        return [
            row async for _, row in self.store.scan(_RUN_ROW) if row.get("status") != "starting"
        ]

    def unsupported(self, step: Step) -> str:
        if step.agent is not None:
            return (
                f"step {step.id} asks for an agent skill, which needs the agents plugin; "
                "install orrery-agents or use call:"
            )
        return (
            f"step {step.id} names a scheduler task, which this version does not run; "
            "use call: with a bus request topic"
        )


_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
}


def _check_input(workflow: Workflow, data: Any) -> None:
    if not isinstance(data, dict):
        raise InvalidInput("input", data, "give the run's input as a JSON object")
    for name, schema in workflow.inputs.items():
        if name not in data:
            if schema.get("required"):
                raise InvalidInput(f"input.{name}", None, "this input is required")
            continue
        expected = _TYPES.get(str(schema.get("type")))
        value = data[name]
        wrong_bool = isinstance(value, bool) and schema.get("type") in ("integer", "number")
        if expected is not None and (not isinstance(value, expected) or wrong_bool):
            raise InvalidInput(f"input.{name}", value, f"expected {schema['type']}")
