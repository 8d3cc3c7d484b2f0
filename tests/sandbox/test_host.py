"""The proxied Context: bus, services, store, journal, http, log, config and hooks."""

from __future__ import annotations

import asyncio
import logging

import pytest
from orrery.sandbox import (
    LayerStatus,
    LayerUnavailable,
    PluginTarget,
    SandboxError,
    SandboxHost,
    SandboxLimits,
    parse_permissions,
)
from orrery.sdk import ConfigError

FULL = '''
import sys
from pydantic import BaseModel

class Settings(BaseModel):
    greeting: str = "hello"
    times: int = 1

class Full(Plugin):
    Config = Settings

    @hookimpl
    def orrery_restore(self, state):
        self.restored = state

    @hookimpl
    async def orrery_start(self, ctx):
        self.ctx = ctx
        self.restored = getattr(self, "restored", None)
        async def greet(event):
            await ctx.store.put("last", event.data)
            return {"text": f"{ctx.config.greeting}, {event.data}" * ctx.config.times}
        ctx.bus.subscribe("greet.hello", greet)

        class Counter:
            n = 0
            def bump(self, by=1):
                Counter.n += by
                return Counter.n
        ctx.services.provide("counter", Counter())

        async def echo(request):
            return {"got": await request.json(), "who": request.principal}
        ctx.http.route("POST", "/echo", echo)
        ctx.log.info("started with %s", ctx.config.greeting)

    @hookimpl
    async def orrery_health(self):
        ctx = self.ctx
        await ctx.store.put("a/1", 1)
        await ctx.store.put("a/2", 2)
        scanned = [kv async for kv in ctx.store.scan("a/")]
        version = await ctx.journal.append("s1", [{"x": 1}, {"x": 2}])
        read = [e.data async for e in ctx.journal.read("s1")]
        await ctx.journal.save_snapshot("s1", 2, {"sum": 3})
        journal_extra = [
            await ctx.journal.version("s1"),
            [(e.stream, e.version, bool(e.id)) async for e in ctx.journal.read_all()],
            await ctx.journal.load_snapshot("s1"),
            await ctx.journal.load_snapshot("s1", max_version=1),
            await ctx.journal.truncate("s1", 2),
            [e.version async for e in ctx.journal.read("s1")],
        ]
        clock = ctx.services.get("clock")
        now = await clock.now()
        reply = await ctx.bus.request("kernel.time", None)
        event = await ctx.bus.publish("greet.sent", {"n": 1}, key="k1")
        return {
            "scanned": scanned, "version": version, "read": read, "now": now,
            "journal_extra": journal_extra,
            "reply": reply, "event": [event.type, event.key, event.data],
            "deleted": await ctx.store.delete("a/1"),
            "missing": await ctx.store.get("nope", "default"),
            "restored": self.restored,
            "modules": sorted(m for m in sys.modules
                              if m.split(".")[0] in ("aiohttp", "pydantic", "orrery")),
        }

    @hookimpl
    def orrery_snapshot(self):
        return {"snap": True}
'''
PERMS = [
    "bus.subscribe:greet.>", "bus.publish:greet.>", "bus.request:kernel.*", "store", "journal",
    "services.provide:counter", "services.get:clock", "http.route",
]


class Clock:
    async def now(self) -> int:
        return 42


@pytest.fixture
async def full(kernel, plugin_file):
    kernel.registry["clock"] = Clock()
    kernel.bus.subscribe("kernel.time", lambda e: "noon")
    return await kernel.sandbox(
        plugin_file("full", FULL), permissions=PERMS, config={"greeting": "hi", "times": 2}
    )


async def test_request_reply_and_store(kernel, full):
    assert await kernel.bus.request("greet.hello", "bob") == {"text": "hi, bobhi, bob"}
    assert full.ctx.store.data["last"] == "bob"


async def test_context_members_round_trip(kernel, full):
    result = await full.call_hook("orrery_health")
    assert result["scanned"] == [["a/1", 1], ["a/2", 2]]
    assert result["version"] == 2
    assert result["read"] == [{"x": 1}, {"x": 2}]
    assert result["journal_extra"] == [
        2, [["s1", 1, True], ["s1", 2, True]], [2, {"sum": 3}], None, 1, [2],
    ]
    assert result["now"] == 42
    assert result["reply"] == "noon"
    assert result["event"] == ["greet.sent", "k1", {"n": 1}]
    assert result["deleted"] is True
    assert result["missing"] == "default"
    assert [e.data for e in kernel.bus.published if e.topic == "greet.sent"] == [{"n": 1}]


async def test_worker_imports_only_sdk_and_plugin(full):
    modules = (await full.call_hook("orrery_health"))["modules"]
    assert not [m for m in modules if m.startswith(("orrery.kernel", "aiohttp"))]
    assert "orrery.sdk" in modules
    # pydantic is there only because this plugin imports it itself.
    assert "pydantic" in modules


async def test_worker_without_pydantic_plugin_has_no_pydantic(kernel, plugin_file):
    host = await kernel.sandbox(plugin_file("bare", '''
    import sys
    class Bare(Plugin):
        @hookimpl
        def orrery_health(self):
            return sorted(m for m in sys.modules if m.split(".")[0] in ("aiohttp", "pydantic")
                          or m.startswith("orrery.kernel"))
    '''))
    assert await host.call_hook("orrery_health") == []


async def test_service_provided_by_the_sandbox(kernel, full):
    counter = kernel.registry["counter"]
    assert await counter.bump() == 1
    assert await counter.bump(by=5) == 6


async def test_http_route(kernel, full, fake_request):
    handler = full.ctx.http.routes[("POST", "/echo")]
    result = await handler(fake_request("POST", "/echo", body={"a": 1}))
    assert result == {"got": {"a": 1}, "who": "tester"}


async def test_log_is_forwarded(kernel, plugin_file, caplog):
    caplog.set_level(logging.INFO, logger="orrery.plugins.logger")
    host = await kernel.sandbox(plugin_file("logger", '''
    class Logger(Plugin):
        @hookimpl
        def orrery_start(self, ctx):
            ctx.log.warning("from the worker %d", 7)
    '''))
    await host.call_hook("orrery_health")  # a round trip: the log frame came before it
    assert "from the worker 7" in caplog.text


async def test_invalid_config_names_the_field(kernel, plugin_file):
    with pytest.raises(ConfigError) as info:
        await kernel.sandbox(plugin_file("full", FULL), permissions=PERMS, config={"times": "x"})
    assert info.value.path == "plugins.full.times"


async def test_snapshot_and_restore_across_hosts(kernel, full, plugin_file):
    state = await full.call_hook("orrery_snapshot")
    await full.stop()
    new = SandboxHost(
        "full", PluginTarget.from_path(full.target.path or ""), full.ctx,
        permissions=parse_permissions(PERMS), limits=SandboxLimits(), config={},
    )
    kernel.hosts.append(new)
    await new.start(state=state)
    assert (await new.call_hook("orrery_health"))["restored"] == {"snap": True}
    assert await kernel.bus.request("greet.hello", "amy") == {"text": "hello, amy"}


async def test_stop_releases_kernel_side_subscriptions(kernel, full):
    assert [s for s in kernel.bus.subs if s.pattern == "greet.hello"]
    await full.stop()
    assert full.state == "stopped"
    assert not [s for s in kernel.bus.subs if s.pattern == "greet.hello"]


async def test_layers_are_reported(full):
    assert full.layers
    assert set(full.layer_report) == {"namespaces", "landlock", "seccomp", "rlimits", "cgroup"}


async def test_missing_required_layer_is_fatal(kernel, echo_plugin, monkeypatch):
    from orrery.sandbox import _launcher

    real = _launcher.detect_layers()
    fake = dict(real)
    fake["landlock"] = LayerStatus("landlock", False, "", "Landlock is not available here")
    monkeypatch.setattr(_launcher, "detect_layers", lambda: fake)
    with pytest.raises(LayerUnavailable, match="landlock"):
        await kernel.sandbox(echo_plugin, require=["landlock"])
    host = await kernel.sandbox(echo_plugin, name="echo2", permissions=["bus.subscribe:echo.>"])
    assert "landlock" not in host.layers


async def test_hook_waits_for_restart(kernel, echo_plugin):
    host = await kernel.sandbox(echo_plugin, permissions=["bus.subscribe:echo.>"])
    host.kill("test")
    async with asyncio.timeout(30):
        await host.wait_state("active", min_restarts=1)
    assert await host.call_hook("orrery_health") == {"ok": True}


COUNTER = '''
class Counter(Plugin):
    permissions = ["bus.subscribe:count.>", "bus.publish:counted.>"]
    version = "VERSION"

    @hookimpl
    def orrery_restore(self, state):
        self.seen = state["seen"]

    @hookimpl
    def orrery_start(self, ctx):
        self.seen = getattr(self, "seen", 0)
        async def count(event):
            self.seen += 1
            await ctx.bus.publish("counted.one", [event.data, "VERSION"])
        ctx.bus.subscribe("count.>", count)

    @hookimpl
    def orrery_snapshot(self):
        return {"seen": self.seen}

    @hookimpl
    def orrery_health(self):
        return {"seen": self.seen, "version": "VERSION"}
'''


async def test_hot_reload_swaps_workers_without_losing_events(kernel, plugin_file):
    path = plugin_file("counter", COUNTER.replace("VERSION", "v1"))
    old = await kernel.sandbox(path)
    counted: dict[int, list[str]] = {}
    all_counted = asyncio.Event()

    def on_counted(event):
        counted.setdefault(event.data[0], []).append(event.data[1])
        if len(counted) == 50:
            all_counted.set()

    kernel.bus.subscribe("counted.>", on_counted)
    for n in range(20):
        await kernel.bus.publish("count.x", n)
    path.write_text(path.read_text().replace("v1", "v2"))
    publishing = asyncio.get_running_loop().create_task(publish_range(kernel, 20, 40))
    new = await old.replace()
    kernel.hosts.append(new)
    await publishing
    for n in range(40, 50):
        await kernel.bus.publish("count.x", n)
    health = await new.call_hook("orrery_health")
    assert health["version"] == "v2"
    assert old.state == "stopped" and new.state == "active"
    async with asyncio.timeout(10):
        await all_counted.wait()
    assert sorted(counted) == list(range(50))
    assert counted[49] == ["v2"]


async def publish_range(kernel, start: int, stop: int) -> None:
    for n in range(start, stop):
        await kernel.bus.publish("count.x", n)
        await asyncio.sleep(0)


async def test_failed_start_keeps_old_version_serving(kernel, plugin_file, tmp_path):
    path = plugin_file("counter", COUNTER.replace("VERSION", "v1"))
    old = await kernel.sandbox(path)
    broken = tmp_path / "broken.py"
    broken.write_text("raise ImportError('syntax slip')\n")
    with pytest.raises(SandboxError):
        await old.replace(PluginTarget.from_path(broken))
    assert old.state == "active"
    assert (await old.call_hook("orrery_health"))["version"] == "v1"


async def test_entry_point_style_target(kernel, tmp_path):
    site = tmp_path / "site"
    (site / "epplug").mkdir(parents=True)
    (site / "epplug" / "__init__.py").write_text(
        "from orrery.sdk import Plugin, hookimpl\n"
        "from .helper import answer\n"
        "class EpPlugin(Plugin):\n"
        "    @hookimpl\n"
        "    def orrery_health(self):\n"
        "        return {'answer': answer()}\n"
    )
    (site / "epplug" / "helper.py").write_text("def answer():\n    return 42\n")
    host = SandboxHost(
        "epplug", PluginTarget.from_ref("epplug:EpPlugin", sys_path=[str(site)]),
        kernel.make_ctx("epplug"),  # type: ignore[arg-type]
        permissions=parse_permissions([]), limits=SandboxLimits(), config={},
    )
    kernel.hosts.append(host)
    await host.start()
    assert await host.call_hook("orrery_health") == {"answer": 42}


def test_plugin_target_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        PluginTarget()
    with pytest.raises(ValueError, match="module:Class"):
        PluginTarget.from_ref("no_colon")


SUBSCRIBER = '''
class Sub(Plugin):
    permissions = ["journal", "bus.subscribe:t.>", "bus.publish:seen.>"]

    @hookimpl
    def orrery_start(self, ctx):
        self.ctx = ctx
        async def on_journal(event):
            await ctx.bus.publish("seen.journal", [event.stream, event.version, event.data])
        ctx.journal.subscribe("orders", on_journal)
        self.sub = ctx.bus.subscribe("t.>", lambda e: None)

    @hookimpl
    async def orrery_health(self):
        self.sub.unsubscribe()
        return self.sub.active
'''


async def test_journal_subscription_and_unsubscribe(kernel, plugin_file):
    host = await kernel.sandbox(plugin_file("sub", SUBSCRIBER))
    seen: asyncio.Queue[list[object]] = asyncio.Queue()
    kernel.bus.subscribe("seen.>", lambda e: seen.put_nowait(e.data))
    journal = host.ctx.journal
    await journal.append("orders", [{"n": 1}, {"n": 2}])
    async with asyncio.timeout(10):
        assert await seen.get() == ["orders", 1, {"n": 1}]
        assert await seen.get() == ["orders", 2, {"n": 2}]
    assert [s for s in kernel.bus.subs if s.pattern == "t.>"]
    assert await host.call_hook("orrery_health") is False
    assert not [s for s in kernel.bus.subs if s.pattern == "t.>"]
