"""The project files of a new plugin around its package: pyproject, README, docs page
and tests through the real kernel. Placeholders: see `_create.render`."""

from __future__ import annotations

__all__ = ["PROJECT_FILES"]

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "orrery-__NAME__"
version = "0.1.0"
description = "An Orrery plugin: __NAME__"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["orrery>=__ORRERY__", "pydantic>=2.7", "typer>=0.12"]

[project.optional-dependencies]
test = ["pytest>=8.0", "pytest-asyncio>=0.23"]

[project.entry-points."orrery.plugins"]
__NAME__ = "__PACKAGE__:__CLS__Plugin"

[project.entry-points."orrery.cli"]
__NAME__ = "__PACKAGE__.cli:app"

[tool.hatch.build.targets.wheel]
packages = ["src/__PACKAGE__"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
testpaths = ["tests"]

[tool.ruff]
line-length = 100
src = ["src", "tests"]

[tool.ruff.lint]
select = ["I", "F", "E", "W", "UP", "B"]

[tool.mypy]
strict = true
mypy_path = "src"
"""

README = """\
# orrery-__NAME__

An [Orrery](https://pypi.org/project/orrery/) plugin. It answers `__NAME__.ping` with
the configured reply and counts the pings in its durable store. See
[docs/__NAME__.md](docs/__NAME__.md).

```sh
pip install -e '.[test]'   # Orrery finds the plugin through its entry point
pytest                     # the tests run against a real in-process kernel
orrery plugins rescan      # a running daemon picks the plugin up
orrery __NAME__ ping ada   # its command line
```

The layout is the standard one (Orrery's DESIGN.md, section 12):

| file | role |
|---|---|
| `_plugin.py` | the Plugin class: name, permissions, Config; hooks only wire parts |
| `_config.py` | pydantic settings (`extra="forbid"`) |
| `_service.py` | the facade other plugins get from `ctx.services` |
| `_core.py` | the machinery; takes SDK protocols (Store, Clock), never Context |
| `_api.py` | one command table, served as bus request topics and HTTP routes |
| `cli.py` | `orrery __NAME__ ...`; the only module importing typer |
| `errors.py` | `__CLS__Error(OrreryError)` and its children |
"""

DOCS = """\
# __NAME__

Counts pings, durably: the count survives restarts and hot reloads.

## Use it

```sh
orrery __NAME__ ping ada        # "pong, ada (ping 1)"
orrery __NAME__ stats --json    # {"count": 1, "last": 1700000000.0}
```

From another plugin:

```python
from __PACKAGE__ import __CONST__

service = ctx.services.get(__CONST__)
await service.ping("ada")
```

## Configuration

```toml
[plugins.__NAME__]
reply = "pong"      # what ping answers with (1-200 characters)
```

An unknown key or a bad value fails the plugin with the field named.

## Bus and HTTP

| command | bus request topic | HTTP |
|---|---|---|
| ping | `__NAME__.ping` `{"who"?}` | `POST /v1/plugins/__NAME__/ping` |
| stats | `__NAME__.stats` | `GET /v1/plugins/__NAME__/stats` |
| reset | `__NAME__.reset` | `POST /v1/plugins/__NAME__/reset` |

A bad argument is a 400 naming the field over HTTP, and
`{"error": {"type", "message"}}` over the bus.

## Guarantees

Each ping is counted once, in the plugin's store, before it is answered.
"""

TEST_PLUGIN = '''\
"""The plugin in a real in-process kernel (fixtures from orrery.sdk.testing)."""

from __future__ import annotations

from pathlib import Path

from orrery.sdk.testing import HarnessFactory, ManualClock

from __PACKAGE__ import __CONST__, __CLS__Plugin

START = 1_700_000_000.0


async def test_pings_are_answered_and_counted_on_the_bus(orrery_kernel: HarnessFactory) -> None:
    clock = ManualClock(start=START)
    async with orrery_kernel(__CLS__Plugin, clock=clock) as k:
        k.assert_state("__NAME__", "active")
        first = await k.request("__NAME__.ping", {"who": "ada"})
        clock.advance(5)
        await k.request("__NAME__.ping", {})
        stats = await k.request("__NAME__.stats", {})
    assert first == {"reply": "pong, ada", "count": 1, "at": START}
    assert stats == {"count": 2, "last": START + 5}


async def test_the_http_routes_serve_the_same_commands(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(__CLS__Plugin) as k:
        ping = await k.http("POST", "/v1/plugins/__NAME__/ping", json={"who": "ada"})
        stats = await k.http("GET", "/v1/plugins/__NAME__/stats")
        bad = await k.http("POST", "/v1/plugins/__NAME__/ping", json={"who": ""})
    assert ping.status == 200 and ping.json()["reply"] == "pong, ada"
    assert stats.json()["count"] == 1
    assert bad.status == 400 and "who" in bad.json()["error"]


async def test_other_plugins_use_the_service(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(__CLS__Plugin) as k:
        service = k.service(__CONST__)
        await service.ping("grace")
        assert service.stats()["count"] == 1
        assert await service.reset() == {"count": 1}


async def test_the_count_survives_a_restart(
    orrery_kernel: HarnessFactory, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    async with orrery_kernel(__CLS__Plugin, state_dir=state) as k:
        await k.request("__NAME__.ping", {})
    async with orrery_kernel(__CLS__Plugin, state_dir=state) as k:
        assert (await k.request("__NAME__.ping", {}))["count"] == 2


async def test_the_reply_is_configurable(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(__CLS__Plugin, config={"reply": "ahoy"}) as k:
        assert (await k.request("__NAME__.ping", {}))["reply"] == "ahoy"


async def test_bad_config_fails_the_plugin_with_the_field(orrery_kernel: HarnessFactory) -> None:
    async with orrery_kernel(__CLS__Plugin, config={"reply": ""}) as k:
        k.assert_state("__NAME__", "failed")
        assert "plugins.__NAME__.reply" in k.plugins["__NAME__"].error
    async with orrery_kernel(__CLS__Plugin, config={"replly": "x"}) as k:
        k.assert_state("__NAME__", "failed")
        assert "replly" in k.plugins["__NAME__"].error
'''

TEST_CORE = '''\
"""The machinery alone, on an in-memory store and a manual clock."""

from __future__ import annotations

import pytest
from orrery.sdk.testing import ManualClock, MemoryStore

from __PACKAGE__ import InvalidInput
from __PACKAGE__._core import PingCounter


async def test_pings_are_counted_and_stored() -> None:
    store, clock = MemoryStore(), ManualClock(start=100.0)
    counter = PingCounter(store, clock, reply="pong")
    assert (await counter.ping(None))["count"] == 1
    again = PingCounter(store, clock, reply="pong")
    await again.load()
    assert again.stats() == {"count": 1, "last": 100.0}


async def test_a_bad_name_is_refused_with_the_field() -> None:
    counter = PingCounter(MemoryStore(), ManualClock(), reply="pong")
    with pytest.raises(InvalidInput) as caught:
        await counter.ping("x" * 101)
    assert caught.value.field == "who"
    assert counter.count == 0
'''

TEST_CLI = '''\
"""The command line: help, and a clear exit 2 when no daemon is running."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from __PACKAGE__.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "ping" in result.output and "stats" in result.output


def test_no_daemon_is_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    for name in ("ORRERY_URL", "ORRERY_TOKEN", "ORRERY_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 2
    assert result.output.startswith("error: no running daemon found")
'''

PROJECT_FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "docs/__NAME__.md": DOCS,
    "tests/test_plugin.py": TEST_PLUGIN,
    "tests/test_core.py": TEST_CORE,
    "tests/test_cli.py": TEST_CLI,
}
