"""``POST /v1/requests``, ``GET /v1/logs``, ``?state=`` on the plugin list, description and
author, the operator events and where configuration values come from, on a real daemon."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from orrery.kernel import Kernel
from orrery.kernel.daemon import Daemon

CHATTY = '''
from pydantic import BaseModel
from orrery.sdk import Plugin, hookimpl


class Settings(BaseModel):
    greeting: str = "hello"
    volume: int = 1


class Chatty(Plugin):
    """Says what it hears, in its log."""

    name = "chatty"
    author = "Ada Lovelace"
    Config = Settings

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.log.warning("chatty started with %s", ctx.config.greeting)

        def hear(event):
            ctx.log.warning("heard %s", event.data)
            return {"echo": event.data, "greeting": ctx.config.greeting}

        ctx.bus.subscribe("chatty.say", hear)
'''

BROKEN = '''
from orrery.sdk import Plugin, hookimpl


class Broken(Plugin):
    name = "broken"
    description = "Fails on purpose"

    @hookimpl
    async def orrery_start(self, ctx):
        raise RuntimeError("cannot start")
'''


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Daemon, aiohttp.ClientSession]]:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "chatty.py").write_text(textwrap.dedent(CHATTY))
    (folder / "broken.py").write_text(textwrap.dedent(BROKEN))
    config = tmp_path / "orrery.toml"
    config.write_text('[plugins.chatty]\ngreeting = "ahoy"\n')
    kernel = Kernel(plugins_dirs=[folder], state_dir=tmp_path / "s", entry_points=False,
                    env={"ORRERY_PLUGINS__CHATTY__VOLUME": "3"}, config=config, watch=False)
    daemon = Daemon(kernel, port=0, grace_period=2.0)
    await daemon.start()
    assert daemon.settings is not None
    headers = {"Authorization": f"Bearer {daemon.settings.token}"}
    try:
        async with aiohttp.ClientSession(base_url=daemon.url, headers=headers) as api:
            yield daemon, api
    finally:
        await daemon.stop()


async def _json(response: aiohttp.ClientResponse, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def test_a_request_gets_the_reply(served: tuple[Daemon, aiohttp.ClientSession]) -> None:
    _, api = served
    async with api.post("/v1/requests", json={"topic": "chatty.say", "data": {"n": 1}}) as r:
        answer = await _json(r)
    assert answer["reply"] == {"echo": {"n": 1}, "greeting": "ahoy"}
    assert answer["topic"] == "chatty.say"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"topic": "nobody.answers", "timeout": 0.2}, 504, "timeout"),
        ({"topic": "bad..topic"}, 422, "topic"),
        ({"topic": "x", "timeout": 0}, 422, "timeout"),
        ({"topic": "x", "surprise": 1}, 422, "surprise"),
    ],
)
async def test_request_errors_name_the_field(
    served: tuple[Daemon, aiohttp.ClientSession], body: dict[str, Any], status: int, field: str
) -> None:
    _, api = served
    async with api.post("/v1/requests", json=body) as r:
        error = await _json(r, status)
    assert error["field"] == field


async def test_an_unencodable_reply_is_a_502_not_a_crash(
    served: tuple[Daemon, aiohttp.ClientSession],
) -> None:
    daemon, api = served
    daemon.kernel.bus.subscribe("odd.reply", lambda e: {"x": object()})
    async with api.post("/v1/requests", json={"topic": "odd.reply"}) as r:
        error = await _json(r, 502)
    assert "JSON" in error["error"]


async def test_the_new_operations_are_in_the_openapi_document(
    served: tuple[Daemon, aiohttp.ClientSession],
) -> None:
    _, api = served
    async with api.get("/v1/openapi.json") as r:
        paths = (await _json(r))["paths"]
    assert paths["/v1/requests"]["post"]["operationId"] == "sendRequest"
    assert paths["/v1/logs"]["get"]["operationId"] == "getLogs"
    assert "get" in paths["/v1/plugins/{name}/config/sources"]
    states = [p for p in paths["/v1/plugins"]["get"]["parameters"] if p["name"] == "state"]
    assert states and "failed" in states[0]["description"]


async def test_plugin_logs_can_be_read_and_followed(
    served: tuple[Daemon, aiohttp.ClientSession],
) -> None:
    daemon, api = served
    async with api.get("/v1/logs", params={"plugin": "chatty"}) as r:
        first = await _json(r)
    assert [rec["message"] for rec in first["records"]] == ["chatty started with ahoy"]
    assert first["records"][0]["plugin"] == "chatty" and first["records"][0]["level"] == "warning"
    # Following: a long poll after 'next' answers as soon as a new record is logged.
    params = {"plugin": "chatty", "after": first["next"], "wait": 30}
    follow = asyncio.create_task(api.get("/v1/logs", params=params))
    await daemon.kernel.bus.publish("chatty.say", "hi")
    async with asyncio.timeout(20):
        response = await follow
    async with response:
        new = await _json(response)
    assert [rec["message"] for rec in new["records"]] == ["heard hi"]
    async with api.get("/v1/logs", params={"plugin": "ghost"}) as r:
        assert (await _json(r, 404))["field"] == "plugin"
    async with api.get("/v1/logs", params={"level": "loud"}) as r:
        assert (await _json(r, 422))["field"] == "level"


async def test_the_plugin_list_filters_by_state_and_refuses_unknown_states(
    served: tuple[Daemon, aiohttp.ClientSession],
) -> None:
    _, api = served
    async with api.get("/v1/plugins", params={"state": "failed"}) as r:
        assert [p["name"] for p in await _json(r)] == ["broken"]
    async with api.get("/v1/plugins", params={"state": "active,failed"}) as r:
        assert [p["name"] for p in await _json(r)] == ["broken", "chatty"]
    async with api.get("/v1/plugins", params=[("state", "failed"), ("state", "active")]) as r:
        assert [p["name"] for p in await _json(r)] == ["broken", "chatty"]
    async with api.get("/v1/plugins", params={"state": "sleepy"}) as r:
        error = await _json(r, 422)
    assert error["field"] == "state" and "active" in error["error"] and "sleepy" in error["error"]


async def test_description_and_author_are_listed(
    served: tuple[Daemon, aiohttp.ClientSession],
) -> None:
    _, api = served
    async with api.get("/v1/plugins/chatty") as r:
        chatty = await _json(r)
    async with api.get("/v1/plugins/broken") as r:
        broken = await _json(r)
    # From the class attribute, else the class docstring's first line.
    assert (chatty["description"], chatty["author"]) == ("Says what it hears, in its log.",
                                                         "Ada Lovelace")
    assert (broken["description"], broken["author"]) == ("Fails on purpose", "")


async def test_operator_changes_are_published(
    served: tuple[Daemon, aiohttp.ClientSession],
) -> None:
    daemon, api = served
    seen: list[tuple[str, Any]] = []
    daemon.kernel.bus.subscribe(
        "orrery.plugin.*", lambda e: seen.append((e.type, e.data)) if e.type.rsplit(".", 1)[1]
        in ("enabled", "disabled", "configured") else None
    )
    async with api.post("/v1/plugins/chatty/disable") as r:
        await _json(r)
    async with api.post("/v1/plugins/chatty/enable") as r:
        await _json(r)
    async with api.put("/v1/plugins/chatty/config", json={"greeting": "moin", "volume": 3}) as r:
        await _json(r)
    assert [t for t, _ in seen] == [
        "orrery.plugin.disabled", "orrery.plugin.enabled", "orrery.plugin.configured"
    ]
    assert seen[0][1]["name"] == "chatty" and seen[0][1]["enabled"] is False
    assert seen[2][1]["changed"] == ["greeting"] and seen[2][1]["state"] == "active"


async def test_config_sources_and_unknown_keys(
    served: tuple[Daemon, aiohttp.ClientSession],
) -> None:
    _, api = served
    async with api.get("/v1/plugins/chatty/config/sources") as r:
        sources = await _json(r)
    assert sources["greeting"] == {"value": "ahoy", "source": "file"}
    assert sources["volume"]["source"] == "environment"
    assert sources["volume"]["variable"] == "ORRERY_PLUGINS__CHATTY__VOLUME"
    async with api.put("/v1/plugins/chatty/config", json={"greeting": "moin", "typo": 1}) as r:
        error = await _json(r, 422)
    assert error["field"] == "plugins.chatty.typo" and "unknown key" in error["error"]
    async with api.put("/v1/plugins/chatty/config", json={"volume": 9}) as r:
        error = await _json(r, 422)
    assert "ORRERY_PLUGINS__CHATTY__VOLUME" in error["error"]
    async with api.put("/v1/plugins/chatty/config", json={"greeting": "moin"}) as r:
        assert (await _json(r))["greeting"] == "moin"
    async with api.get("/v1/plugins/chatty/config/sources") as r:
        assert (await _json(r))["greeting"]["source"] == "runtime"
