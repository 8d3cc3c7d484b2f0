"""Source of the plugins the daemon tests run (written into a temporary plugin folder)."""

from __future__ import annotations

ROUTES = '''
from pydantic import BaseModel, ConfigDict
from orrery.sdk import HttpError, HttpRequest, HttpResponse, Plugin, PermissionDenied, hookimpl


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str = "hello"
    limit: int = 10


class Routes(Plugin):
    name = "routes"
    Config = Settings

    @hookimpl
    async def orrery_start(self, ctx):
        async def item(request):
            return {"id": request.params["id"], "q": dict(request.query),
                    "path": request.path, "principal": request.principal,
                    "greeting": ctx.config.greeting,
                    "protocol": isinstance(request, HttpRequest)}

        async def echo(request):
            return {"method": request.method, "body": await request.json(),
                    "agent": request.headers.get("X-Test", "")}

        def boom(request):
            raise RuntimeError("secret internal detail")

        def denied(request):
            raise PermissionDenied("routes", "read", "vault")

        def weird(request):
            return object()

        def missing(request):
            raise HttpError(404, "no such widget: " + request.query.get("id", "?"))

        def text(request):
            return HttpResponse("a,b\\n1,2\\n", content_type="text/csv")

        ctx.http.route("GET", "/items/{id}", item)
        ctx.http.route("POST", "/echo", echo)
        ctx.http.route("GET", "/boom", boom)
        ctx.http.route("GET", "/denied", denied)
        ctx.http.route("GET", "/weird", weird)
        ctx.http.route("GET", "/missing", missing)
        ctx.http.route("GET", "/text", text)
        ctx.http.route("POST", "/", echo)
'''

SINK = '''
import asyncio
from pathlib import Path
from orrery.sdk import Plugin, hookimpl

OUT = Path({out!r})


class Sink(Plugin):
    """Appends the id of every load.> event it handles to a file.

    Each event takes a little while (simulated work), so under load events queue up:
    stopping must deliver the queued ones, not drop them.
    """

    name = "sink"

    @hookimpl
    async def orrery_start(self, ctx):
        async def record(event):
            await asyncio.sleep(0.001)
            with OUT.open("a") as f:
                f.write(event.id + "\\n")

        ctx.bus.subscribe("load.>", record)
'''

GUARD = '''
from orrery.sdk import Plugin, hookimpl


class Guard(Plugin):
    """Denies publishing on secret.> and disabling itself; allows everything else."""

    name = "guard"

    @hookimpl
    def orrery_authorize(self, principal, action, resource):
        if action == "events.publish" and resource.startswith("secret."):
            return False
        if action == "events.publish" and resource == "policy.broken":
            raise RuntimeError("policy store unreachable")
        if action == "plugins.disable" and resource == "guard":
            return False
        if action == "http.post" and resource == "routes/echo" and principal != "operator":
            return False
        return None
'''
