"""Answers ``greet.hello`` requests: edit the greeting in orrery.toml or live in this file."""

from orrery.sdk import Context, Event, Plugin, hookimpl
from pydantic import BaseModel


class Settings(BaseModel):
    greeting: str = "hello"


class Greeter(Plugin):
    name = "greeter"
    permissions = ["bus.subscribe:greet.>"]
    Config = Settings

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        def on_hello(event: Event) -> dict[str, str]:
            return {"text": f"{ctx.config.greeting}, {event.data['who']}"}

        ctx.bus.subscribe("greet.hello", on_hello)
        ctx.log.info("answering greet.hello with %r", ctx.config.greeting)
