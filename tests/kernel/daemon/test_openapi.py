"""The OpenAPI document covers every route the daemon serves."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from orrery.kernel.daemon import API_ENDPOINTS, Daemon


async def document(api: aiohttp.ClientSession) -> dict[str, Any]:
    async with api.get("/v1/openapi.json") as response:
        assert response.status == 200
        doc: dict[str, Any] = await response.json()
    return doc


def _template(path: str) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", path)


async def test_every_router_route_is_documented(api: aiohttp.ClientSession, daemon: Daemon) -> None:
    doc = await document(api)
    assert doc["openapi"].startswith("3.1")
    app = daemon._app
    assert app is not None
    served = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.name in ("pluginRoot", "pluginRoute") or route.method == "HEAD":
            continue  # the plugin dispatchers: their routes are checked below
        served.add((route.method.lower(), _template(path)))
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served and served <= documented


async def test_every_mounted_plugin_route_is_documented(
    api: aiohttp.ClientSession, daemon: Daemon
) -> None:
    doc = await document(api)
    for route in daemon.kernel.routes.routes():
        if route.path == "/" and route.method in ("GET", "DELETE"):
            continue  # shadowed by the core getPlugin / uninstallPlugin
        assert route.method.lower() in doc["paths"][route.mount_path], route


async def test_operations_document_auth_bodies_and_errors(api: aiohttp.ClientSession) -> None:
    doc = await document(api)
    ops = {op["operationId"]: op for ops in doc["paths"].values() for op in ops.values()}
    for endpoint in API_ENDPOINTS:
        op = ops[endpoint.operation_id]
        if endpoint.public:
            assert op["security"] == [] and "401" not in op["responses"]
        else:
            assert "401" in op["responses"]
        if endpoint.body is not None:
            assert op["requestBody"]["required"] is True
            assert {"400", "413", "422"} <= set(op["responses"])
        if endpoint.action:
            assert op["x-orrery-action"] == endpoint.action
    publish = ops["publishEvent"]["requestBody"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][publish["$ref"].rsplit("/", 1)[-1]]
    assert schema["required"] == ["topic"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
