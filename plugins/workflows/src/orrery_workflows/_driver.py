"""The driver of one run on this node: read the run's journal, decide, append, act.

Every decision is appended (with ``expected_version``) before anything it causes
happens: a step's request is sent only after its ``step.started`` is durable, and its
result counts only once ``step.completed`` is. When an append is refused, someone else
(a decision, a cancel, another node) wrote first: the driver re-reads and decides again,
and stops when another node holds the run's lease.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orrery.sdk import WrongExpectedVersion

from ._expr import parse_template, render
from ._model import Step, Workflow
from ._state import STEP_DONE, RunState

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["ATTEMPT_HEADER", "IDEMPOTENCY_HEADER", "RunDriver", "scope_of"]

#: The headers of DESIGN.md section 11 on every step request: the idempotency key is
#: ``<run>:<step>`` (``:compensate`` for the undo), the same for every attempt.
IDEMPOTENCY_HEADER = "orrery-idempotency-key"
ATTEMPT_HEADER = "orrery-attempt"


@dataclass
class _Result:
    kind: str  # "step" or "comp"
    step: str
    attempt: int
    ok: bool
    value: Any
    retryable: bool = True


def scope_of(state: RunState) -> dict[str, Any]:
    """What ``${{ }}`` expressions of the run see."""
    steps = {sid: {"output": s.output, "status": s.status} for sid, s in state.steps.items()}
    return {"inputs": state.input if state.input is not None else {}, "steps": steps}


class RunDriver:
    """Advances one run while this node holds its lease."""

    def __init__(self, engine: Engine, state: RunState, wake: asyncio.Event) -> None:
        self.engine = engine
        self.state = state
        self.workflow = Workflow.model_validate(state.definition)
        self.wake = wake
        self.calls: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.results: list[_Result] = []
        self.batch: list[dict[str, Any]] = []
        self.launches: list[tuple[str, str, int]] = []
        # When this driver sent each call: a step taken over after a crash gets its
        # whole timeout again from the moment it is re-sent.
        self.sent_at: dict[tuple[str, str], float] = {}

    @property
    def stream(self) -> str:
        return self.engine.stream(self.state.id)

    # -- the loop ------------------------------------------------------------------

    async def run(self) -> None:
        """Drive until the run is terminal, another node owns it, or only people can
        move it on (then the lease is released)."""
        engine = self.engine
        try:
            while True:
                await self._catch_up()
                now = engine.clock.now()
                if self.state.terminal:
                    # The read model may lag the journal after a crash: catch it up.
                    await engine.store_row(self.state)
                    return
                if not self._may_drive(now):
                    return
                self._decide(now)
                if self.batch or self.launches:
                    if not await self._flush(now):
                        self.state = await engine.load(self.state.id)
                    continue
                if not self.calls and self._only_people_can_move_it():
                    self._emit("run.released", {})
                    if not await self._flush(now, renew=False):
                        self.state = await engine.load(self.state.id)
                        continue
                    return
                until = self._next_wake(now)
                await engine.clock.wait(self.wake, until, engine.settings.poll_interval)
                self.wake.clear()
        finally:
            for task in self.calls.values():
                task.cancel()

    def _may_drive(self, now: float) -> bool:
        owner = self.state.owner
        return owner is None or owner == self.engine.node or self.state.lease_until <= now

    def _only_people_can_move_it(self) -> bool:
        state = self.state
        if state.phase != "forward":
            return False
        busy = {"running", "retrying"}
        return state.status == "waiting" and not any(s.status in busy for s in state.steps.values())

    def _next_wake(self, now: float) -> float:
        times = [self.state.lease_until - self.engine.settings.lease / 2]
        timer = self.state.next_timer()
        if timer is not None:
            times.append(timer)
        for sid, step_state in self.state.steps.items():
            if step_state.status == "running" and ("step", sid) in self.calls:
                times.append(self._deadline(sid))
        return max(now, min(times))

    async def _catch_up(self) -> None:
        state = self.state
        async for event in self.engine.journal.read(self.stream, state.journal_version + 1):
            self.engine.apply(state, event.version, event.type, event.data)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        data.setdefault("at", self.engine.clock.now())
        self.batch.append({"type": kind, "data": data})
        self.engine.apply(self.state, self.state.journal_version, kind, data)

    async def _flush(self, now: float, *, renew: bool = True) -> bool:
        events = self.batch
        self.batch = []
        launches, self.launches = self.launches, []
        state = self.state
        expected = state.journal_version
        if renew and (
            state.owner != self.engine.node
            or state.lease_until - now < self.engine.settings.lease / 2
        ):
            until = now + self.engine.settings.lease
            claim = {"type": "run.claimed", "data": {"node": self.engine.node, "until": until}}
            events.insert(0, claim)
            self.engine.apply(state, expected, "run.claimed", claim["data"])
        if events:
            try:
                version = await self.engine.journal.append(
                    self.stream, events, expected_version=expected
                )
            except WrongExpectedVersion:
                return False
            state.journal_version = version
            await self.engine.appended(state, events)
        for kind, sid, attempt in launches:
            self._launch(kind, sid, attempt)
        return True

    # -- decisions -----------------------------------------------------------------

    def _decide(self, now: float) -> None:
        self._take_results(now)
        if self.state.phase == "forward":
            self._forward(now)
        if self.state.phase == "compensating" and not self.state.terminal:
            self._compensate(now)

    def _take_results(self, now: float) -> None:
        state = self.state
        results, self.results = self.results, []
        for r in results:
            step = self.workflow.step(r.step)
            s = state.step(r.step)
            if r.kind == "step":
                if s.status != "running" or s.attempts != r.attempt:
                    continue  # cancelled, or a stale attempt
                if r.ok:
                    self._emit("step.completed", {"step": r.step, "output": r.value})
                else:
                    self._fail(
                        step, "step.failed", r.attempt, str(r.value), r.retryable, now, step.retry
                    )
            else:
                if s.comp != "running" or s.comp_attempts != r.attempt:
                    continue
                compensate = step.compensate
                assert compensate is not None
                if r.ok:
                    self._emit("comp.completed", {"step": r.step, "output": r.value})
                else:
                    self._fail(
                        step,
                        "comp.failed",
                        r.attempt,
                        str(r.value),
                        r.retryable,
                        now,
                        compensate.retry,
                    )
        # A step whose request outlived its timeout counts as a failed attempt.
        for sid, s in state.steps.items():
            if s.status == "running" and ("step", sid) in self.calls:
                step = self.workflow.step(sid)
                if now >= self._deadline(sid):
                    self.calls.pop(("step", sid)).cancel()
                    error = f"timed out after {step.timeout:g} s"
                    self._fail(step, "step.failed", s.attempts, error, True, now, step.retry)

    def _deadline(self, sid: str) -> float:
        started = self.state.step(sid).started_at or 0.0
        sent = self.sent_at.get(("step", sid), started)
        return max(started, sent) + self.workflow.step(sid).timeout

    def _fail(
        self,
        step: Step,
        kind: str,
        attempt: int,
        error: str,
        retryable: bool,
        now: float,
        retry: Any,
    ) -> None:
        retry_at = now + retry.delay(attempt) if retryable and attempt < retry.attempts else None
        data = {"step": step.id, "attempt": attempt, "error": error, "retry_at": retry_at}
        self._emit(kind, data)

    def _forward(self, now: float) -> None:
        state, wf = self.state, self.workflow
        failed = [sid for sid, s in state.steps.items() if s.status == "failed"]
        if failed:
            self._emit(
                "run.compensating", {"step": failed[0], "error": state.steps[failed[0]].error}
            )
            return
        if state.status == "cancelled":
            return
        running = sum(1 for s in state.steps.values() if s.status == "running")
        for step in wf.steps:
            s = state.step(step.id)
            if s.status == "running" and ("step", step.id) not in self.calls:
                # In flight when this node (or another) stopped: send it again, same key.
                self.launches.append(("step", step.id, s.attempts))
            elif s.status == "retrying" and s.retry_at is not None and s.retry_at <= now:
                if running < wf.max_parallel:
                    running += 1
                    self._start(step, s.attempts + 1)
            elif s.status == "pending" and all(
                state.step(n).status in STEP_DONE for n in step.needs
            ):
                if step.when is not None and not self._condition(step.when):
                    self._emit("step.skipped", {"step": step.id, "reason": "when is false"})
                elif step.approval is not None:
                    approval = step.approval
                    deadline = now + approval.timeout if approval.timeout else None
                    self._emit(
                        "approval.requested",
                        {
                            "step": step.id,
                            "approvers": approval.approvers,
                            "deadline": deadline,
                            "stage": 0,
                        },
                    )
                elif running < wf.max_parallel:
                    running += 1
                    self._start(step, 1)
            elif s.status == "waiting" and s.deadline is not None and s.deadline <= now:
                self._timed_out(step, s.stage, now)
        if all(state.step(s.id).status in STEP_DONE for s in wf.steps) and not state.terminal:
            output = {sid: s.output for sid, s in state.steps.items() if s.status == "completed"}
            self._emit("run.finished", {"status": "completed", "output": output})

    def _condition(self, text: str) -> bool:
        text = text.strip()
        if "${{" not in text:
            text = "${{ " + text + " }}"
        template = parse_template(text)
        assert template is not None
        return bool(template.render(scope_of(self.state)))

    def _timed_out(self, step: Step, stage: int, now: float) -> None:
        approval = step.approval
        assert approval is not None
        action: str = approval.on_timeout
        if stage == 1 and approval.escalate is not None:
            action = approval.escalate.on_timeout
        if action == "escalate" and approval.escalate is not None:
            timeout = approval.escalate.timeout
            self._emit(
                "approval.requested",
                {
                    "step": step.id,
                    "approvers": approval.escalate.approvers,
                    "deadline": now + timeout if timeout else None,
                    "stage": 1,
                    "escalated": True,
                },
            )
            return
        self._emit(
            "approval.decided",
            {
                "step": step.id,
                "approved": action == "approve",
                "by": "timeout",
                "comment": f"no decision in time: {action}",
            },
        )

    def _start(self, step: Step, attempt: int) -> None:
        self._emit("step.started", {"step": step.id, "attempt": attempt})
        self.launches.append(("step", step.id, attempt))

    def _compensate(self, now: float) -> None:
        state = self.state
        if any(s.status == "running" for s in state.steps.values()):
            return  # let the parallel branches land first: what they complete is undone too
        for sid in reversed(state.completion):
            s = state.step(sid)
            if s.comp is None or s.comp == "done":
                continue
            if s.comp == "pending":
                self._emit("comp.started", {"step": sid, "attempt": 1})
                self.launches.append(("comp", sid, 1))
            elif s.comp == "running" and ("comp", sid) not in self.calls:
                self.launches.append(("comp", sid, s.comp_attempts))
            elif s.comp == "retrying" and s.comp_retry_at is not None and s.comp_retry_at <= now:
                attempt = s.comp_attempts + 1
                self._emit("comp.started", {"step": sid, "attempt": attempt})
                self.launches.append(("comp", sid, attempt))
            elif s.comp == "failed":
                self._emit(
                    "run.finished",
                    {
                        "status": "failed",
                        "reason": "compensation_failed",
                        "error": f"compensation of step {sid} failed: {s.comp_error}",
                    },
                )
            return  # one compensation at a time, in reverse completion order
        self._emit(
            "run.finished", {"status": "compensated", "reason": "step_failed", "error": state.error}
        )

    # -- side effects --------------------------------------------------------------

    def _launch(self, kind: str, sid: str, attempt: int) -> None:
        old = self.calls.pop((kind, sid), None)
        if old is not None:
            old.cancel()
        self.sent_at[(kind, sid)] = self.engine.clock.now()
        task = asyncio.create_task(self._call(kind, sid, attempt), name=f"workflow {sid}")
        self.calls[(kind, sid)] = task

    async def _call(self, kind: str, sid: str, attempt: int) -> None:
        step = self.workflow.step(sid)
        scope = scope_of(self.state)
        key = f"{self.state.id}:{sid}"
        retryable = True
        try:
            if kind == "comp":
                assert step.compensate is not None
                topic, args, timeout = (
                    step.compensate.call,
                    step.compensate.with_,
                    step.compensate.timeout,
                )
                key += ":compensate"
            elif step.call is not None:
                topic, args, timeout = step.call, step.with_, step.timeout
            else:
                retryable = False
                raise RuntimeError(self.engine.unsupported(step))
            headers = {IDEMPOTENCY_HEADER: key, ATTEMPT_HEADER: str(attempt)}
            data = render(args, scope)
            reply = await self.engine.bus.request(topic, data, timeout=timeout, headers=headers)
            if isinstance(reply, dict) and reply.get("error"):
                raise RuntimeError(f"{topic} answered an error: {reply['error']}")
            result = _Result(kind, sid, attempt, True, reply)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of a call is the step's failure
            result = _Result(kind, sid, attempt, False, f"{type(e).__name__}: {e}", retryable)
        if self.calls.get((kind, sid)) is asyncio.current_task():
            del self.calls[(kind, sid)]
        self.results.append(result)
        self.wake.set()
