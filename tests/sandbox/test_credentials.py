"""Credentials do not cross into a worker: request headers, environment, descriptors,
other plugins' config (#13 item 1), in every sandbox mode."""

from __future__ import annotations

import os

import pytest
from orrery.sandbox import parse_permissions

TOKEN = "s3cr3t-daemon-token-0123456789"

SPY = '''
import os

class Spy(Plugin):
    permissions = ["http.route"]

    @hookimpl
    def orrery_start(self, ctx):
        self.ctx = ctx

        def looted(inode):
            hits = []
            for fd in range(1024):
                try:
                    st = os.fstat(fd)
                except OSError:
                    continue
                if st.st_ino == inode:
                    hits.append(fd)
            return hits

        def spy(request):
            return {
                "headers": dict(request.headers),
                "content_type": request.content_type,
                "environ": dict(os.environ),
                "config": ctx.config,
                "fds": looted(ctx.config["inode"]),
                "query": dict(request.query),
            }
        ctx.http.route("POST", "/spy", spy)
'''


async def test_route_handler_sees_no_credentials(
    kernel, plugin_file, fake_request, tmp_path, monkeypatch, sandbox_mode
):
    # The kernel's environment and an inheritable descriptor both hold the token.
    monkeypatch.setenv("ORRERY_TOKEN", TOKEN)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TOKEN)
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    fd = os.open(secret, os.O_RDONLY)
    os.set_inheritable(fd, True)
    try:
        await kernel.sandbox(
            plugin_file("other", "class Other(Plugin):\n    pass\n"),
            config={"password": TOKEN},
        )
        await kernel.sandbox(
            plugin_file("spy", SPY), config={"inode": os.fstat(fd).st_ino}
        )
        handler = kernel.hosts[-1].ctx.http.routes[("POST", "/spy")]
        request = fake_request(
            "POST", "/spy", body={"q": 1}, query={"a": "b"},
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "Cookie": f"session={TOKEN}",
                "Proxy-Authorization": f"Basic {TOKEN}",
                "X-Api-Key": TOKEN,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-Custom": "not on the list",
            },
        )
        seen = await handler(request)
    finally:
        os.close(fd)
    assert TOKEN not in repr(seen)
    assert seen["headers"] == {"Content-Type": "application/json", "Accept": "application/json"}
    assert seen["content_type"] == "application/json"
    assert seen["query"] == {"a": "b"}
    assert "ORRERY_TOKEN" not in seen["environ"]
    assert set(seen["environ"]) <= {
        "PATH", "LANG", "HOME", "TMPDIR", "MALLOC_ARENA_MAX", "PWD",  # PWD: bubblewrap's
    }
    assert seen["fds"] == []


async def test_header_permission_adds_a_header_but_never_a_credential(
    kernel, plugin_file, fake_request, tmp_path, sandbox_mode
):
    for credential in ("Authorization", "cookie", "Proxy-Authorization"):
        with pytest.raises(ValueError, match="never forwarded"):
            parse_permissions([f"http.header:{credential}"])
    await kernel.sandbox(
        plugin_file("spy", SPY), config={"inode": 0},
        permissions=["http.route", "http.header:X-Custom"],
    )
    handler = kernel.hosts[-1].ctx.http.routes[("POST", "/spy")]
    seen = await handler(fake_request(
        "POST", "/spy", headers={"Authorization": f"Bearer {TOKEN}", "X-Custom": "yes"},
    ))
    assert seen["headers"] == {"X-Custom": "yes"}


DAEMON_SPY = '''
import os
from orrery.sdk import Plugin, hookimpl

class Spy(Plugin):
    name = "spy"
    sandbox = True
    permissions = ["http.route"]

    @hookimpl
    def orrery_start(self, ctx):
        def spy(request):
            return {"headers": dict(request.headers), "environ": dict(os.environ),
                    "config": ctx.config, "rid": request.headers.get("x-request-id")}
        ctx.http.route("GET", "/spy", spy)
'''


async def test_daemon_token_does_not_reach_a_sandboxed_route(
    orrery_kernel, orrery_plugins_dir, monkeypatch, sandbox_mode
):
    """Through the real daemon over HTTP: the bearer token that authenticated the request
    is not in what the worker's route handler sees."""
    monkeypatch.setenv("ORRERY_TOKEN", TOKEN)
    path = orrery_plugins_dir("spy.py", DAEMON_SPY)
    config = {"plugins": {"spy": {"api_key": "own"}, "other": {"password": TOKEN}}}
    async with orrery_kernel(plugins_dirs=[path.parent], config=config) as k:
        k.assert_state("spy", "active")
        r = await k.http("GET", "/v1/plugins/spy/spy", headers={
            "Cookie": f"session={TOKEN}", "X-Request-Id": "r-1",
        })
        assert r.status == 200, r.text
        seen = r.json()
    assert TOKEN not in r.text
    assert not {h.lower() for h in seen["headers"]} & {"authorization", "cookie"}
    assert seen["rid"] == "r-1"  # looked up case-insensitively
    assert "ORRERY_TOKEN" not in seen["environ"]
    assert seen["config"] == {"api_key": "own"}
