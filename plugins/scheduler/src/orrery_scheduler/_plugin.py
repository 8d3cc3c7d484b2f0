"""SchedulerPlugin: wires the scheduler to the kernel; the hooks only connect parts."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Context, Plugin, ServiceKey, hookimpl

from ._api import Commands
from ._config import SchedulerConfig
from ._core import Core
from ._log import JournalLog, MemoryLog, OpLog
from ._runner import Handlers
from ._service import Scheduler

__all__ = ["SCHEDULER", "SchedulerPlugin"]

#: The scheduler service: ``ctx.services.get(SCHEDULER)``.
SCHEDULER: ServiceKey[Scheduler] = ServiceKey("scheduler", Scheduler)

#: `orrery_handover` key of the registered task functions (live objects).
_HANDLERS = "handlers"


class SchedulerPlugin(Plugin):
    """Background tasks, cron, priorities, deadlines, quotas, retries; durable and
    shared between nodes."""

    name = "scheduler"
    permissions = (
        "bus.publish:task.>",
        "bus.publish:scheduler.>",
        "bus.subscribe:scheduler.>",
        "store",
        "journal",
    )
    Config = SchedulerConfig

    def __init__(self) -> None:
        self.core: Core | None = None
        self.scheduler: Scheduler | None = None

    @hookimpl
    async def orrery_start(self, ctx: Context[SchedulerConfig]) -> None:
        """Load the task state, provide the service, answer the bus and HTTP."""
        config = ctx.config
        node = config.node_id or ctx.node_id
        oplog: OpLog
        if config.persistence == "journal":
            oplog = JournalLog(
                ctx.journal, f"tasks.{config.cluster}", config.snapshot_every,
                retention=config.journal_retention, now=ctx.clock.now,
            )  # fmt: skip
        else:
            oplog = MemoryLog()
        core = self.core = Core(config, ctx.clock, oplog, ctx.bus, node, ctx.log)
        handlers = ctx.handed_over.get(_HANDLERS)
        if isinstance(handlers, Handlers):
            core.handlers.adopt(handlers)
        if ctx.restored and not oplog.durable:
            core.adopt(dict(ctx.restored))
        await core.start()
        scheduler = self.scheduler = Scheduler(core)
        ctx.services.provide(SCHEDULER, scheduler)
        commands = Commands(scheduler)
        commands.subscribe(ctx.bus)
        commands.mount(ctx.http)
        # Announced for operators and tests watching nodes join (documented event).
        await ctx.bus.publish("scheduler.node.started", {"plugin": ctx.name, "node": node})
        ctx.log.info(
            "scheduler on node %s: %s, %d tasks known",
            node,
            "journal stream " + f"tasks.{config.cluster}" if oplog.durable else "memory only",
            len(core.table.tasks),
        )

    @hookimpl
    async def orrery_stop(self, ctx: Context[SchedulerConfig]) -> None:
        """Let running tasks finish (within shutdown_grace), re-queue the rest, flush."""
        if self.scheduler is not None:
            self.scheduler.running = False
        if self.core is not None:
            await self.core.stop()

    @hookimpl
    async def orrery_snapshot(self, ctx: Context[SchedulerConfig]) -> dict[str, Any]:
        """In memory mode, the tasks for the next version, as JSON-able data (journal
        mode keeps them in the journal)."""
        if self.core is None or self.core.oplog.durable:
            return {}
        return self.core.snapshot()

    @hookimpl
    async def orrery_handover(self, ctx: Context[SchedulerConfig]) -> dict[str, Any]:
        """The registered task functions: other plugins registered them once, as live
        objects, and the next version keeps running them."""
        if self.core is None:
            return {}
        return {_HANDLERS: self.core.handlers}

    @hookimpl
    async def orrery_health(self, ctx: Context[SchedulerConfig]) -> dict[str, Any]:
        """Counts by state and whether the pump runs."""
        if self.core is None:
            return {"ok": False, "reason": "not started"}
        if self.core.failed is not None:
            return {"ok": False, "reason": self.core.failed}
        return {"ok": True, "node": self.core.node, "tasks": self.core.counts()}
