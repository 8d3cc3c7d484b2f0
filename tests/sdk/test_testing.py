"""orrery.sdk.testing: harness.http through the real daemon app, FakeRequest, MemoryStore."""

from __future__ import annotations

from typing import Any

import pytest
from orrery.sdk import Context, HttpRequest, HttpResponse, Plugin, Store, StoreError, hookimpl
from orrery.sdk import http as sdk_http
from orrery.sdk.testing import FakeRequest, MemoryStore

ITEMS = {"a": 1, "b": 2}


class Catalog(Plugin):
    name = "catalog"

    @hookimpl
    def orrery_start(self, ctx: Context) -> None:
        def get_item(request: HttpRequest) -> Any:
            return {"key": request.params["key"], "value": ITEMS[request.params["key"]]}

        def list_items(request: HttpRequest) -> Any:
            limit = sdk_http.query_int(request, "limit", 10, min=1)
            return sorted(ITEMS)[:limit]

        async def add(request: HttpRequest) -> Any:
            body = await request.json()
            if not isinstance(body, dict) or "key" not in body:
                raise ValueError('send {"key": ..., "value": ...}')
            return {"added": body["key"], "by": request.principal}

        ctx.http.route("GET", "/items/{key}", get_item)
        ctx.http.route("GET", "/items", list_items)
        ctx.http.route("POST", "/items", add)
        ctx.http.route("GET", "/text", lambda r: HttpResponse("up 1\n"))
        ctx.http.route("GET", "/needs", lambda r: ctx.services.get("absent.service"))


async def test_harness_http_serves_plugin_routes_through_the_daemon(orrery_kernel) -> None:
    async with orrery_kernel(Catalog) as k:
        found = await k.http("GET", "/v1/plugins/catalog/items/a")
        listed = await k.http("GET", "/v1/plugins/catalog/items", query={"limit": 1})
        added = await k.http("POST", "/v1/plugins/catalog/items", json={"key": "c"})
        text = await k.http("GET", "/v1/plugins/catalog/text")
        plugins = await k.http("GET", "/v1/plugins")
    assert (found.status, found.json()) == (200, {"key": "a", "value": 1})
    assert found.headers["Content-Type"].startswith("application/json")
    assert listed.json() == ["a"]
    assert added.json() == {"added": "c", "by": "operator"}
    assert (text.status, text.text) == (200, "up 1\n")
    assert [p["name"] for p in plugins.json()] == ["catalog"]


async def test_route_errors_map_to_404_and_400(orrery_kernel) -> None:
    async with orrery_kernel(Catalog) as k:
        missing = await k.http("GET", "/v1/plugins/catalog/items/zzz")
        bad_query = await k.http("GET", "/v1/plugins/catalog/items", query={"limit": "lots"})
        bad_body = await k.http("POST", "/v1/plugins/catalog/items", json=[1])
    assert missing.status == 404, missing.text  # a KeyError from the handler
    assert missing.json()["error"] == "not found: zzz"
    assert bad_query.status == 400
    assert bad_query.json()["field"] == "limit"
    assert "expected an integer, got 'lots'" in bad_query.json()["error"]
    assert bad_body.status == 400  # a ValueError from the handler
    assert "send" in bad_body.json()["error"]


async def test_a_missing_service_in_a_route_is_503_not_404(orrery_kernel) -> None:
    async with orrery_kernel(Catalog) as k:
        result = await k.http("GET", "/v1/plugins/catalog/needs")
    assert result.status == 503
    assert "absent.service" in result.json()["error"]


async def test_a_request_without_the_token_is_refused(orrery_kernel) -> None:
    async with orrery_kernel(Catalog) as k:
        result = await k.http("GET", "/v1/plugins", headers={"Authorization": "Bearer wrong"})
    assert result.status == 401


async def test_fake_request_drives_a_handler_without_a_kernel() -> None:
    seen = []

    async def handler(request: HttpRequest) -> Any:
        body = await request.json()
        body["touched"] = True
        seen.append((request.method, request.path, dict(request.params), request.query))
        return body

    data = {"x": 1}
    request = FakeRequest("post", "/things/3", params={"id": "3"}, query={"n": 2}, json=data)
    assert isinstance(request, HttpRequest)
    assert await handler(request) == {"x": 1, "touched": True}
    assert data == {"x": 1}  # the handler got a copy
    assert seen == [("POST", "/things/3", {"id": "3"}, {"n": "2"})]
    assert request.principal == "test" and request.headers == {}


async def test_memory_store_behaves_like_the_real_store() -> None:
    store = MemoryStore({"k0": 0})
    assert isinstance(store, Store)
    value = {"items": (1, 2)}
    await store.put("b", value)
    await store.put("a", 1)
    await store.put("c/1", "x")
    assert await store.get("b") == {"items": [1, 2]}  # plain JSON back, not the object
    assert await store.get("nope", "dflt") == "dflt"
    assert [k async for k, _ in store.scan()] == ["a", "b", "c/1", "k0"]
    assert [kv async for kv in store.scan("c/")] == [("c/1", "x")]
    assert await store.delete("a") is True
    assert await store.delete("a") is False
    with pytest.raises(StoreError, match="'bad'.*not JSON-able"):
        await store.put("bad", object())
