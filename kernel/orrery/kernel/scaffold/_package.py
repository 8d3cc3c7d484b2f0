"""The package files of a new plugin (``src/orrery_<name>/``), in the standard layout of
DESIGN.md section 12. Placeholders: see `_create.render`."""

from __future__ import annotations

__all__ = ["PACKAGE_FILES"]

INIT = '''\
"""The __NAME__ plugin for Orrery: counts pings, durably.

Other plugins use the service::

    service = ctx.services.get(__CONST__)
    answer = await service.ping("ada")
"""

from ._config import Settings
from ._plugin import __CONST__, __CLS__Plugin
from ._service import __CLS__Service
from .errors import __ERRORS__

__all__ = [
    "__CONST__",
    "InvalidInput",
    "Settings",
    "__CLS__Error",
    "__CLS__Plugin",
    "__CLS__Service",
]
'''

PLUGIN = '''\
"""__CLS__Plugin: connects the parts to the kernel. The hooks only wire; the work
happens in `_core`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Context, Plugin, ServiceKey, hookimpl

from ._api import Commands
from ._config import Settings
from ._core import PingCounter
from ._service import __CLS__Service

__all__ = ["__CONST__", "__CLS__Plugin"]

#: The service other plugins get with ``ctx.services.get(__CONST__)``.
__CONST__: ServiceKey[__CLS__Service] = ServiceKey("__NAME__", __CLS__Service)


class __CLS__Plugin(Plugin):
    """Answers ``__NAME__.ping`` and ``__NAME__.stats`` on the bus and over HTTP."""

    name = "__NAME__"
    permissions = ["bus.subscribe:__NAME__.>", "store"]
    Config = Settings

    def __init__(self) -> None:
        self.core: PingCounter | None = None

    @hookimpl
    async def orrery_start(self, ctx: Context[Settings]) -> None:
        core = self.core = PingCounter(ctx.store, ctx.clock, reply=ctx.config.reply)
        await core.load()
        service = __CLS__Service(core)
        ctx.services.provide(__CONST__, service)
        commands = Commands(service)
        commands.subscribe(ctx.bus, prefix="__NAME__")
        commands.mount(ctx.http)

    @hookimpl
    async def orrery_health(self, ctx: Context[Settings]) -> dict[str, Any]:
        if self.core is None:
            return {"ok": False, "reason": "not started"}
        return {"ok": True, "pings": self.core.count}
'''

CONFIG = '''\
"""Settings of the __NAME__ plugin: ``[plugins.__NAME__]`` in orrery.toml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Settings"]


class Settings(BaseModel):
    """Validated by the kernel; a bad value fails the plugin with the field named."""

    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")

    #: What ``ping`` answers with (the caller's name is appended when given).
    reply: str = Field("pong", min_length=1, max_length=200)
'''

SERVICE = '''\
"""The facade other plugins get from ``ctx.services``: a few plain methods."""

from __future__ import annotations

from typing import Any

from ._core import PingCounter

__all__ = ["__CLS__Service"]


class __CLS__Service:
    """What the __NAME__ plugin offers other plugins."""

    def __init__(self, core: PingCounter) -> None:
        self._core = core

    async def ping(self, who: str | None = None) -> dict[str, Any]:
        """Count a ping; ``{"reply", "count", "at"}``."""
        return await self._core.ping(who)

    def stats(self) -> dict[str, Any]:
        """``{"count", "last"}``: pings so far and when the last one came (epoch s)."""
        return self._core.stats()

    async def reset(self) -> dict[str, Any]:
        """Forget every ping; ``{"count": <how many were forgotten>}``."""
        return {"count": await self._core.reset()}
'''

CORE = '''\
"""The machinery. It takes SDK protocols (`Store`, `Clock`), never a Context, so it is
tested on its own with `orrery.sdk.testing.MemoryStore` and `ManualClock`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import Clock, Store

from .errors import InvalidInput

__all__ = ["PingCounter"]

_STATE_KEY = "state"
_MAX_NAME = 100


class PingCounter:
    """Counts pings in the store, so the count survives restarts and reloads."""

    def __init__(self, store: Store, clock: Clock, *, reply: str) -> None:
        self._store = store
        self._clock = clock
        self._reply = reply
        self.count = 0
        self.last: float | None = None

    async def load(self) -> None:
        state = await self._store.get(_STATE_KEY) or {}
        self.count = int(state.get("count", 0))
        self.last = state.get("last")

    async def ping(self, who: str | None) -> dict[str, Any]:
        if who is not None and (not isinstance(who, str) or not 0 < len(who) <= _MAX_NAME):
            raise InvalidInput("who", who, f"give a name of 1 to {_MAX_NAME} characters")
        self.count += 1
        self.last = self._clock.now()
        await self._store.put(_STATE_KEY, {"count": self.count, "last": self.last})
        reply = f"{self._reply}, {who}" if who else self._reply
        return {"reply": reply, "count": self.count, "at": self.last}

    def stats(self) -> dict[str, Any]:
        return {"count": self.count, "last": self.last}

    async def reset(self) -> int:
        forgotten, self.count, self.last = self.count, 0, None
        await self._store.delete(_STATE_KEY)
        return forgotten
'''

API = '''\
"""One command table, served as bus request topics (``__NAME__.<command>``) and as HTTP
routes (``/v1/plugins/__NAME__/<command>``).

Over HTTP a bad argument is a 400 naming the field (the daemon maps `ValueError`);
over the bus, errors come back as ``{"error": {"type", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from orrery.sdk import Bus, Event, HttpError, HttpRequest, HttpRoutes

from ._service import __CLS__Service
from .errors import __CLS__Error

__all__ = ["Commands"]

Command = Callable[[dict[str, Any]], Awaitable[Any]]


class Commands:
    """``name -> (HTTP method, handler)``; each handler takes and returns JSON."""

    def __init__(self, service: __CLS__Service) -> None:
        self.service = service
        self.table: dict[str, tuple[str, Command]] = {
            "ping": ("POST", self._ping),
            "stats": ("GET", self._stats),
            "reset": ("POST", self._reset),
        }

    async def _ping(self, args: dict[str, Any]) -> Any:
        return await self.service.ping(args.get("who"))

    async def _stats(self, args: dict[str, Any]) -> Any:
        return self.service.stats()

    async def _reset(self, args: dict[str, Any]) -> Any:
        return await self.service.reset()

    def subscribe(self, bus: Bus, *, prefix: str) -> None:
        for name, (_, command) in self.table.items():
            bus.subscribe(f"{prefix}.{name}", _on_request(command))

    def mount(self, http: HttpRoutes) -> None:
        for name, (method, command) in self.table.items():
            http.route(method, f"/{name}", _on_http(method, command))


def _on_request(command: Command) -> Callable[[Event], Awaitable[Any]]:
    async def handle(event: Event) -> Any:
        args = event.data if isinstance(event.data, dict) else {}
        try:
            return await command(args)
        except __CLS__Error as e:
            return {"error": {"type": type(e).__name__, "message": str(e)}}

    return handle


def _on_http(method: str, command: Command) -> Callable[[HttpRequest], Awaitable[Any]]:
    async def handle(request: HttpRequest) -> Any:
        body = dict(request.query) if method == "GET" else await request.json()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise HttpError(400, "send a JSON object as the body", field="body")
        return await command(body)

    return handle
'''

ERRORS = '''\
"""Errors of the __NAME__ plugin; all derive from `__CLS__Error`."""

from __future__ import annotations

from typing import Any

from orrery.sdk import OrreryError

__all__ = ["InvalidInput", "__CLS__Error"]


class __CLS__Error(OrreryError):
    """Base class of every error of the __NAME__ plugin."""


class InvalidInput(__CLS__Error, ValueError):
    """An argument was refused; ``field`` names it (HTTP answers 400)."""

    def __init__(self, field: str, value: Any, hint: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {hint}")
        self.field = field
        self.value = value
'''

CLI = '''\
"""``orrery __NAME__ ...``: the plugin's command line, talking to a running daemon.

Mounted by ``orrery`` through the ``orrery.cli`` entry point. The only module of the
plugin that imports typer: the plugin itself stays light (it may run sandboxed).
"""

from __future__ import annotations

from typing import Annotated

import typer
from orrery.sdk import cli

__all__ = ["app"]

#: Where the daemon mounts the plugin's routes.
BASE = "/v1/plugins/__NAME__"

app = cli.plugin_app("__NAME__", help="The __NAME__ plugin on a running daemon.")


@app.command("ping")
@cli.handle_errors
def ping(
    who: Annotated[str | None, typer.Argument(metavar="NAME", help="Who pings.")] = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Ping the plugin; prints the reply and the count."""
    client = cli.connect(url, token, state_dir)
    answer = client.call("POST", f"{BASE}/ping", {"who": who} if who else {})
    if as_json:
        cli.print_json(answer)
    else:
        typer.echo(f"{answer['reply']} (ping {answer['count']})")


@app.command("stats")
@cli.handle_errors
def stats(
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """How many pings, and when the last one came."""
    client = cli.connect(url, token, state_dir)
    answer = client.call("GET", f"{BASE}/stats")
    cli.output(answer, as_json=as_json, columns=["count", "last"], wide=wide)
'''

PACKAGE_FILES = {
    "__init__.py": INIT,
    "_plugin.py": PLUGIN,
    "_config.py": CONFIG,
    "_service.py": SERVICE,
    "_core.py": CORE,
    "_api.py": API,
    "errors.py": ERRORS,
    "cli.py": CLI,
    "py.typed": "",
}
