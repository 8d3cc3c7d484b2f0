"""WorkflowsPlugin: connects the parts to the kernel. The hooks only wire; the work
happens in `_engine` and `_driver`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Context, Plugin, ServiceKey, hookimpl

from ._api import Commands
from ._config import Settings
from ._engine import Engine
from ._registry import Registry
from ._service import WorkflowsService

__all__ = ["WORKFLOWS", "WorkflowsPlugin"]

#: The service other plugins get with ``ctx.services.get(WORKFLOWS)``.
WORKFLOWS: ServiceKey[WorkflowsService] = ServiceKey("workflows", WorkflowsService)


class WorkflowsPlugin(Plugin):
    """The durable execution engine: YAML DAG workflows, retries, compensation and human
    approval, each run an event-sourced journal stream."""

    name = "workflows"
    optional = {"scheduler": ">=0.1", "agents": ">=0.1"}
    permissions = [
        "bus.publish:workflow.>",
        "bus.subscribe:workflow.>",
        "bus.subscribe:workflows.>",
        "bus.request:>",
        "store",
        "journal",
    ]
    Config = Settings

    def __init__(self) -> None:
        self.engine: Engine | None = None

    @hookimpl
    async def orrery_start(self, ctx: Context[Settings]) -> None:
        config = ctx.config
        registry = Registry(ctx.store, ctx.log)
        await registry.load()
        await registry.scan_dirs(config.dirs)
        node = config.node_id or ctx.node_id
        engine = self.engine = Engine(
            config, registry, ctx.journal, ctx.store, ctx.bus, ctx.clock, node, ctx.log
        )
        service = WorkflowsService(engine, registry)
        ctx.services.provide(WORKFLOWS, service)
        commands = Commands(service)
        commands.subscribe(ctx.bus, prefix="workflows")
        commands.mount(ctx.http)
        await engine.start()

    @hookimpl
    async def orrery_stop(self, ctx: Context[Settings]) -> None:
        if self.engine is not None:
            await self.engine.stop()

    @hookimpl
    async def orrery_health(self, ctx: Context[Settings]) -> dict[str, Any]:
        if self.engine is None:
            return {"ok": False, "reason": "not started"}
        errors = self.engine.registry.file_errors
        return {
            "ok": not errors,
            "node": self.engine.node,
            "driving": len(self.engine.drivers),
            "file_errors": errors,
        }
