"""WorkflowsPlugin: connects the parts to the kernel. The hooks only wire; the work
happens in `_core`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Context, Plugin, ServiceKey, hookimpl

from ._api import Commands
from ._config import Settings
from ._core import PingCounter
from ._service import WorkflowsService

__all__ = ["WORKFLOWS", "WorkflowsPlugin"]

#: The service other plugins get with ``ctx.services.get(WORKFLOWS)``.
WORKFLOWS: ServiceKey[WorkflowsService] = ServiceKey("workflows", WorkflowsService)


class WorkflowsPlugin(Plugin):
    """Answers ``workflows.ping`` and ``workflows.stats`` on the bus and over HTTP."""

    name = "workflows"
    permissions = ["bus.subscribe:workflows.>", "store"]
    Config = Settings

    def __init__(self) -> None:
        self.core: PingCounter | None = None

    @hookimpl
    async def orrery_start(self, ctx: Context[Settings]) -> None:
        core = self.core = PingCounter(ctx.store, ctx.clock, reply=ctx.config.reply)
        await core.load()
        service = WorkflowsService(core)
        ctx.services.provide(WORKFLOWS, service)
        commands = Commands(service)
        commands.subscribe(ctx.bus, prefix="workflows")
        commands.mount(ctx.http)

    @hookimpl
    async def orrery_health(self, ctx: Context[Settings]) -> dict[str, Any]:
        if self.core is None:
            return {"ok": False, "reason": "not started"}
        return {"ok": True, "pings": self.core.count}
