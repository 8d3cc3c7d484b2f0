"""HelloPlugin: greets on request, counts greetings durably, offers a service and a route."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Context, Event, HttpRequest, Plugin, ServiceKey, hookimpl
from pydantic import BaseModel, field_validator


class Settings(BaseModel):
    """``[plugins.hello]`` in orrery.toml."""

    template: str = "Hello, {name}!"

    @field_validator("template")
    @classmethod
    def _has_name(cls, value: str) -> str:
        if "{name}" not in value:
            raise ValueError("template must contain {name}")
        return value


class Greeter:
    """The ``hello.greeter`` service other plugins can use."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def greet(self, name: str) -> dict[str, Any]:
        greeted = int(await self._ctx.store.get("greeted", 0)) + 1
        await self._ctx.store.put("greeted", greeted)
        await self._ctx.bus.publish("hello.greeted", {"name": name}, key=name)
        return {"text": self._ctx.config.template.format(name=name), "greeted": greeted}


GREETER = ServiceKey("hello.greeter", Greeter)


class HelloPlugin(Plugin):
    name = "hello"
    permissions = [
        "bus.subscribe:hello.>",
        "bus.publish:hello.>",
        "store",
        "services.provide:hello.greeter",
        "http.route",
    ]
    Config = Settings

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        greeter = Greeter(ctx)

        async def on_greet(event: Event) -> dict[str, Any]:
            name = (event.data or {}).get("name")
            if not isinstance(name, str) or not name:
                return {"error": 'send {"name": "..."}'}
            return await greeter.greet(name)

        async def stats(request: HttpRequest) -> dict[str, Any]:
            return {"greeted": int(await ctx.store.get("greeted", 0))}

        ctx.bus.subscribe("hello.greet", on_greet)
        ctx.services.provide(GREETER, greeter)
        ctx.http.route("GET", "/stats", stats)

    @hookimpl
    async def orrery_health(self, ctx: Context) -> dict[str, Any]:
        return {"ok": True, "greeted": int(await ctx.store.get("greeted", 0))}
