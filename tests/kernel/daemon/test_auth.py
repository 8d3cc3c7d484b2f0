"""Bearer-token authentication and authorization through the orrery_authorize hook."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import aiohttp
import pytest
from orrery.kernel import Kernel
from orrery.kernel.daemon import API_ENDPOINTS, Daemon, load_or_create_token


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "routes", path)


@pytest.mark.parametrize(
    "endpoint", [e for e in API_ENDPOINTS if not e.public], ids=lambda e: e.operation_id
)
@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer", "bearer  "])
async def test_every_endpoint_but_health_needs_the_token(
    anonymous: aiohttp.ClientSession, endpoint: object, header: str | None
) -> None:
    from orrery.kernel.daemon import Endpoint

    assert isinstance(endpoint, Endpoint)
    headers = {"Authorization": header} if header is not None else {}
    async with anonymous.request(
        endpoint.method, _concrete(endpoint.path), headers=headers, json={"topic": "a"}
    ) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json()
        assert body["status"] == 401 and "orrery token" in body["error"]


async def test_unknown_paths_and_plugin_routes_need_the_token_too(
    anonymous: aiohttp.ClientSession,
) -> None:
    for path in ("/v1/nope", "/v1/plugins/routes/items/1", "/"):
        async with anonymous.get(path) as response:
            assert response.status == 401, path


async def test_health_and_ready_are_open(anonymous: aiohttp.ClientSession) -> None:
    async with anonymous.get("/v1/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}
    async with anonymous.get("/v1/ready") as response:
        assert response.status == 200
        assert (await response.json())["ready"] is True


async def test_the_right_token_is_accepted_in_any_scheme_case(
    anonymous: aiohttp.ClientSession, token: str
) -> None:
    async with anonymous.get("/v1/plugins", headers={"Authorization": f"bearer {token}"}) as r:
        assert r.status == 200


def test_token_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create_token(tmp_path)
    mode = stat.S_IMODE((tmp_path / "token").stat().st_mode)
    assert mode == 0o600
    assert len(first) >= 40
    assert load_or_create_token(tmp_path) == first


async def test_token_survives_a_restart(tmp_path: Path, daemon_plugins: Path) -> None:
    tokens = []
    for _ in range(2):
        kernel = Kernel(plugins_dirs=[], state_dir=tmp_path / "s", entry_points=False, env={})
        d = Daemon(kernel, port=0)
        await d.start()
        assert d.settings is not None
        tokens.append(d.settings.token)
        await d.stop()
    assert tokens[0] == tokens[1]


async def test_a_denied_publish_is_403_and_not_published(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/events", json={"topic": "secret.plans", "data": 1}) as response:
        assert response.status == 403
        body = await response.json()
        assert "events.publish" in body["error"] and "secret.plans" in body["error"]
    async with api.post("/v1/events", json={"topic": "public.plans", "data": 1}) as response:
        assert response.status == 202


async def test_a_failing_authorization_hook_refuses_the_call(api: aiohttp.ClientSession) -> None:
    async with api.post("/v1/events", json={"topic": "policy.broken"}) as response:
        assert response.status == 503
        assert "security plugin" in (await response.json())["error"]


async def test_a_denied_lifecycle_call_is_403_and_changes_nothing(
    api: aiohttp.ClientSession,
) -> None:
    async with api.post("/v1/plugins/guard/disable") as response:
        assert response.status == 403
    async with api.get("/v1/plugins/guard") as response:
        assert (await response.json())["state"] == "active"


async def test_mutating_plugin_routes_are_authorized(
    api: aiohttp.ClientSession, daemon: Daemon
) -> None:
    seen: list[tuple[str, str, str]] = []

    class Spy:
        from orrery.sdk import hookimpl

        @hookimpl
        def orrery_authorize(self, principal: str, action: str, resource: str) -> None:
            seen.append((principal, action, resource))

    spy = Spy()
    daemon.kernel.manager.pm.register(spy, name="spy")
    try:
        async with api.post("/v1/plugins/routes/echo", json={"a": 1}) as response:
            assert response.status == 200
        async with api.get("/v1/plugins/routes/items/3") as response:
            assert response.status == 200
    finally:
        daemon.kernel.manager.pm.unregister(spy)
    assert seen == [("operator", "http.post", "routes/echo")]
