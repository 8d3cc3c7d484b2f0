"""Plugin routes under /v1/plugins/<name>/...: dispatch, errors, and runtime changes."""

from __future__ import annotations

import json

import aiohttp
from orrery.kernel.daemon import Daemon


async def test_route_with_params_query_and_principal(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/routes/items/42", params={"x": "1"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        body = await response.json()
    assert body == {"id": "42", "q": {"x": "1"}, "path": "/items/42", "principal": "operator",
                    "greeting": "hello", "protocol": True}


async def test_post_route_gets_the_json_body_and_headers(api: aiohttp.ClientSession) -> None:
    async with api.post(
        "/v1/plugins/routes/echo", json={"a": [1, 2]}, headers={"X-Test": "yes"}
    ) as response:
        assert response.status == 200
        assert await response.json() == {"method": "POST", "body": {"a": [1, 2]}, "agent": "yes"}


async def test_root_route_of_a_plugin(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/plugins/routes", json=1) as response:
        assert response.status == 200
        assert (await response.json())["body"] == 1


async def test_bad_json_to_a_plugin_route_is_400(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/plugins/routes/echo", data=b"{oops") as response:
        assert response.status == 400
        assert (await response.json())["field"] == "body"


async def test_a_raising_route_is_500_without_a_traceback(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/routes/boom") as response:
        assert response.status == 500
        text = await response.text()
    body = json.loads(text)
    assert body["status"] == 500 and "routes" in body["error"]
    assert "Traceback" not in text and "secret internal detail" not in text


async def test_permission_denied_in_a_route_is_403(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/routes/denied") as response:
        assert response.status == 403
        assert "vault" in (await response.json())["error"]


async def test_a_route_chooses_its_error_status_with_http_error(
    api: aiohttp.ClientSession,
) -> None:
    async with api.get("/v1/plugins/routes/missing?id=w7") as response:
        assert response.status == 404
        assert (await response.json())["error"] == "no such widget: w7"


async def test_a_route_can_answer_with_text(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/routes/text") as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert await response.text() == "a,b\n1,2\n"


async def test_a_non_json_return_value_is_500(api: aiohttp.ClientSession) -> None:
    async with api.get("/v1/plugins/routes/weird") as response:
        assert response.status == 500


async def test_unknown_routes_and_plugins_are_404_and_wrong_methods_405(
    api: aiohttp.ClientSession,
) -> None:
    async with api.get("/v1/plugins/routes/missing") as response:
        assert response.status == 404
    async with api.get("/v1/plugins/ghost/x") as response:
        assert response.status == 404
    async with api.delete("/v1/plugins/routes/echo") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"


async def test_routes_disappear_on_disable_and_come_back_on_enable(
    api: aiohttp.ClientSession, daemon: Daemon
) -> None:
    async def documented() -> bool:
        async with api.get("/v1/openapi.json") as response:
            return "/v1/plugins/routes/items/{id}" in (await response.json())["paths"]

    assert await documented()
    async with api.post("/v1/plugins/routes/disable") as response:
        assert response.status == 200
    async with api.get("/v1/plugins/routes/items/1") as response:
        assert response.status == 404
    assert not await documented()
    async with api.post("/v1/plugins/routes/enable") as response:
        assert response.status == 200
    async with api.get("/v1/plugins/routes/items/1") as response:
        assert response.status == 200
    assert await documented()
