"""Counts greetings in its durable store and offers the count as a service and route."""

from typing import Any

from orrery.sdk import Context, Event, HttpRequest, Plugin, ServiceKey, hookimpl


class GreetCounter(Plugin):
    name = "greet-counter"
    requires = {"greeter": ">=0"}
    permissions = ["bus.subscribe:greet.>", "store", "services.provide:greet-count", "http.route"]

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        async def count(event: Event) -> None:
            total = await ctx.store.get("total", 0) + 1
            await ctx.store.put("total", total)

        async def read_count() -> int:
            return int(await ctx.store.get("total", 0))

        async def http_count(request: HttpRequest) -> dict[str, Any]:
            return {"total": await read_count()}

        ctx.bus.subscribe("greet.hello", count)
        ctx.services.provide(ServiceKey("greet-count"), read_count)
        ctx.http.route("GET", "/count", http_count)
