"""``/v1/plugins``: every operation's happy path and its bad inputs."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from orrery.kernel.daemon import Daemon


async def test_list_has_the_contract_fields(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins") as response:
        assert response.status == 200
        plugins = await response.json()
    assert [p["name"] for p in plugins] == ["guard", "routes", "sink"]
    for p in plugins:
        assert {"name", "version", "state", "source", "error"} <= set(p)
        assert p["state"] == "active" and p["error"] is None


async def test_get_one_and_unknown_is_404_naming_the_known(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/routes") as response:
        assert response.status == 200
        assert (await response.json())["name"] == "routes"
    async with api.get("/v1/plugins/nope") as response:
        assert response.status == 404
        body = await response.json()
        assert body["field"] == "name" and "nope" in body["error"] and "routes" in body["error"]


async def test_disable_then_enable(api: aiohttp.ClientSession, daemon: Daemon) -> None:
    async with api.post("/v1/plugins/sink/disable") as response:
        assert response.status == 200
        assert (await response.json())["state"] == "stopped"
    assert daemon.kernel.plugins["sink"].state == "stopped"
    async with api.post("/v1/plugins/sink/enable") as response:
        assert response.status == 200
        assert (await response.json())["state"] == "active"


@pytest.mark.parametrize("operation", ["enable", "disable", "reload"])
async def test_lifecycle_on_unknown_plugin_is_404(
    api: aiohttp.ClientSession, operation: str
) -> None:
    async with api.post(f"/v1/plugins/ghost/{operation}") as response:
        assert response.status == 404


async def test_wrong_method_is_a_json_405(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/sink/enable") as response:
        assert response.status in (404, 405)
        assert (await response.json())["status"] == response.status
    async with api.patch("/v1/plugins") as response:
        assert response.status == 405
        assert "GET" in response.headers["Allow"]


async def test_reload_picks_up_new_code(
    api: aiohttp.ClientSession, daemon_plugins: Path
) -> None:
    source = (daemon_plugins / "routes.py").read_text()
    (daemon_plugins / "routes.py").write_text(
        source.replace('ctx.http.route("POST", "/", echo)',
                       'ctx.http.route("POST", "/", echo)\n'
                       '        ctx.http.route("GET", "/new", lambda r: "fresh")')
    )
    async with api.post("/v1/plugins/routes/reload") as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["state"] == "active"
    async with api.get("/v1/plugins/routes/new") as response:
        assert response.status == 200
        assert await response.json() == "fresh"


async def test_a_rejected_reload_is_409_and_the_old_version_keeps_serving(
    api: aiohttp.ClientSession, daemon_plugins: Path
) -> None:
    (daemon_plugins / "routes.py").write_text("this is not python(\n")
    async with api.post("/v1/plugins/routes/reload") as response:
        assert response.status == 409
        body = await response.json()
        assert "routes" in body["error"]
    async with api.get("/v1/plugins/routes/items/1") as response:
        assert response.status == 200


async def test_config_get_and_put(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/routes/config") as response:
        assert response.status == 200
        assert (await response.json())["greeting"] == "hello"
    async with api.put("/v1/plugins/routes/config", json={"greeting": "moin"}) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["greeting"] == "moin"
    async with api.get("/v1/plugins/routes/items/1") as response:
        assert (await response.json())["greeting"] == "moin"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"greeting": 5}, 422, "plugins.routes.greeting"),
        ({"limit": "many"}, 422, "plugins.routes.limit"),
        ({"nonsense": 1}, 422, "plugins.routes.nonsense"),
        ([1, 2], 422, "body"),
        ("text", 422, "body"),
    ],
)
async def test_invalid_config_is_422_naming_the_field_and_changes_nothing(
    api: aiohttp.ClientSession, body: object, status: int, field: str
) -> None:
    async with api.put("/v1/plugins/routes/config", json=body) as response:
        assert response.status == status
        answer = await response.json()
        assert answer["field"] == field, answer
    async with api.get("/v1/plugins/routes/config") as response:
        assert (await response.json())["greeting"] == "hello"


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"[" * 10_000])
async def test_malformed_config_bodies_are_4xx(api: aiohttp.ClientSession, raw: bytes) -> None:
    async with api.put("/v1/plugins/routes/config", data=raw) as response:
        assert response.status in (400, 422)
        assert (await response.json())["status"] == response.status


async def test_config_of_unknown_plugin_is_404(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/ghost/config") as response:
        assert response.status == 404
    async with api.put("/v1/plugins/ghost/config", json={}) as response:
        assert response.status == 404


async def test_rescan_answers_changes_and_plugins(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/plugins/rescan") as response:
        assert response.status == 200
        body = await response.json()
    assert body["changes"] == {"added": [], "upgraded": [], "removed": []}
    assert {p["name"] for p in body["plugins"]} >= {"routes", "sink", "guard"}


@pytest.mark.parametrize("body", [{}, {"spec": ""}, {"spec": 3}, {"spec": "x", "extra": 1}])
async def test_install_validates_its_body(api: aiohttp.ClientSession, body: object) -> None:
    async with api.post("/v1/plugins", json=body) as response:
        assert response.status == 422
        assert (await response.json())["field"] in ("spec", "extra")


async def test_install_failure_is_a_4xx_with_pip_output(api: aiohttp.ClientSession) -> None:
    async with api.post(
        "/v1/plugins", json={"spec": "/nonexistent/orrery-no-such-plugin"}
    ) as response:
        assert response.status == 409
        assert "pip install" in (await response.json())["error"]


async def test_uninstalling_a_folder_plugin_is_refused(api: aiohttp.ClientSession) -> None:
    async with api.delete("/v1/plugins/sink") as response:
        assert response.status == 409
        assert "sink" in (await response.json())["error"]
    async with api.delete("/v1/plugins/ghost") as response:
        assert response.status == 404
