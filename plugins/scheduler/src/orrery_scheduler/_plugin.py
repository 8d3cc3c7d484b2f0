"""SchedulerPlugin: wires the scheduler to the kernel through the Context."""

from __future__ import annotations

from typing import Any, ClassVar

from orrery.sdk import Context, Plugin, ServiceKey, hookimpl

from ._api import Commands
from ._clock import Clock, SystemClock
from ._config import SchedulerConfig
from ._core import Core
from ._log import JournalLog, MemoryLog, OpLog
from ._runner import Handlers
from ._service import Scheduler

__all__ = ["SCHEDULER", "SchedulerPlugin"]

#: The scheduler service: ``ctx.services.get(SCHEDULER)``.
SCHEDULER: ServiceKey[Scheduler] = ServiceKey("scheduler", Scheduler)


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
    #: The clock every new instance uses; tests set a `ManualClock` via `with_clock`.
    clock: ClassVar[Clock | None] = None

    def __init__(self) -> None:
        self.core: Core | None = None
        self.scheduler: Scheduler | None = None
        self._restored: dict[str, Any] | None = None

    @classmethod
    def with_clock(cls, clock: Clock) -> type[SchedulerPlugin]:
        """A subclass whose instances use ``clock`` (for deterministic tests)."""
        return type(cls.__name__, (cls,), {"clock": clock, "__module__": cls.__module__})

    @staticmethod
    def _config(ctx: Context) -> SchedulerConfig:
        config = ctx.config
        if isinstance(config, SchedulerConfig):
            return config
        return SchedulerConfig.model_validate(config or {})

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        """Load the task state, provide the service, answer the bus and HTTP."""
        config = self._config(ctx)
        node = config.node_id or await self._kernel_node(ctx)
        oplog: OpLog
        clock = self.clock or SystemClock()
        if config.persistence == "journal":
            oplog = JournalLog(
                ctx.journal,
                f"tasks.{config.cluster}",
                config.snapshot_every,
                retention=config.journal_retention,
                now=clock.now,
            )
        else:
            oplog = MemoryLog()
        core = self.core = Core(config, clock, oplog, ctx.bus, node, ctx.log)
        restored, self._restored = self._restored or {}, None
        handlers = restored.pop("handlers", None)
        if isinstance(handlers, Handlers):
            core.handlers.adopt(handlers)
        if restored and not oplog.durable:
            core.adopt(restored)
        await core.start()
        scheduler = self.scheduler = Scheduler(core)
        ctx.services.provide(SCHEDULER, scheduler)
        commands = Commands(scheduler)
        commands.subscribe(ctx.bus)
        commands.mount(ctx.http)
        ctx.log.info(
            "scheduler on node %s: %s, %d tasks known",
            node,
            "journal stream " + f"tasks.{config.cluster}" if oplog.durable else "memory only",
            len(core.table.tasks),
        )

    @staticmethod
    async def _kernel_node(ctx: Context) -> str:
        # The SDK has no call for the node id; the kernel stamps it on event sources
        # (orrery://<node>/<plugin>), so announce this start and read it back.
        event = await ctx.bus.publish("scheduler.node.started", {"plugin": ctx.name})
        source = event.source.removeprefix("orrery://")
        return source.split("/", 1)[0] or "local"

    @hookimpl
    async def orrery_stop(self, ctx: Context) -> None:
        """Let running tasks finish (within shutdown_grace), re-queue the rest, flush."""
        if self.scheduler is not None:
            self.scheduler.running = False
        if self.core is not None:
            await self.core.stop()

    @hookimpl
    async def orrery_snapshot(self, ctx: Context) -> dict[str, Any]:
        """What the next version takes over at a hot reload: the registered task
        functions (in-process objects: other plugins registered them once), and in
        memory mode the tasks (journal mode keeps those in the journal)."""
        if self.core is None:
            return {}
        state = {} if self.core.oplog.durable else self.core.snapshot()
        state["handlers"] = self.core.handlers
        return state

    @hookimpl
    async def orrery_restore(self, ctx: Context, state: dict[str, Any]) -> None:
        """Keep the previous version's tasks until `orrery_start` builds the core."""
        self._restored = state

    @hookimpl
    async def orrery_health(self, ctx: Context) -> dict[str, Any]:
        """Counts by state and whether the pump runs."""
        if self.core is None:
            return {"ok": False, "reason": "not started"}
        if self.core.failed is not None:
            return {"ok": False, "reason": self.core.failed}
        return {"ok": True, "node": self.core.node, "tasks": self.core.counts()}
