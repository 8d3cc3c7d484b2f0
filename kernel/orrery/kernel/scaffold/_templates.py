"""The files of a new plugin project. ``{name}``, ``{package}``, ``{cls}`` and ``{orrery}``
are filled in; doubled braces are literal."""

from __future__ import annotations

__all__ = ["TEMPLATES"]

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "orrery-{name}"
version = "0.1.0"
description = "An Orrery plugin: {name}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["orrery>={orrery}", "pydantic>=2.7"]

[project.optional-dependencies]
test = ["pytest>=8.0", "pytest-asyncio>=0.23"]

[project.entry-points."orrery.plugins"]
{name} = "{package}:{cls}"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""

INIT = """\
\"\"\"The {name} plugin for Orrery.\"\"\"

from .plugin import {cls}, Settings

__all__ = ["{cls}", "Settings"]
"""

PLUGIN = """\
\"\"\"{cls}: answers requests on ``{name}.ping`` and counts them in its store.\"\"\"

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orrery.sdk import Context, Event, Plugin, hookimpl


class Settings(BaseModel):
    \"\"\"Configured under [plugins.{name}] in orrery.toml.\"\"\"

    reply: str = "pong"


class {cls}(Plugin):
    name = "{name}"
    permissions = ["bus.subscribe:{name}.>", "store"]
    Config = Settings

    @hookimpl
    async def orrery_start(self, ctx: Context) -> None:
        async def on_ping(event: Event) -> dict[str, Any]:
            count = await ctx.store.get("pings", 0) + 1
            await ctx.store.put("pings", count)
            return {{"reply": ctx.config.reply, "count": count}}

        ctx.bus.subscribe("{name}.ping", on_ping)

    @hookimpl
    async def orrery_health(self, ctx: Context) -> dict[str, Any]:
        return {{"ok": True, "pings": await ctx.store.get("pings", 0)}}
"""

TEST = """\
\"\"\"Tests against a real in-process kernel, through the orrery_kernel fixture.\"\"\"

from {package} import {cls}


async def test_starts_and_answers(orrery_kernel):
    async with orrery_kernel({cls}) as k:
        k.assert_state("{name}", "active")
        assert await k.request("{name}.ping", {{}}) == {{"reply": "pong", "count": 1}}
        assert await k.request("{name}.ping", {{}}) == {{"reply": "pong", "count": 2}}


async def test_reply_is_configurable(orrery_kernel):
    async with orrery_kernel({cls}, config={{"reply": "ahoy"}}) as k:
        assert (await k.request("{name}.ping", {{}}))["reply"] == "ahoy"


async def test_invalid_config_fails_the_plugin_with_the_field(orrery_kernel):
    async with orrery_kernel({cls}, config={{"reply": ["not", "text"]}}) as k:
        k.assert_state("{name}", "failed")
        assert "plugins.{name}.reply" in k.plugins["{name}"].error
"""

README = """\
# orrery-{name}

An [Orrery](https://pypi.org/project/orrery/) plugin. It answers requests on
`{name}.ping` with the configured reply and counts them in its durable store.

```sh
pip install -e '.[test]'   # installs the plugin; Orrery finds it through its entry point
pytest                     # runs the tests against a real in-process kernel
orrery plugins ls          # shows {name}
```

Configure it in `orrery.toml`:

```toml
[plugins.{name}]
reply = "pong"
```
"""

TEMPLATES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "src/{package}/__init__.py": INIT,
    "src/{package}/plugin.py": PLUGIN,
    "tests/test_plugin.py": TEST,
}
