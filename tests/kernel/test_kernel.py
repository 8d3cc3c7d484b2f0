"""The embedding API: ``async with Kernel(...) as k``."""

from __future__ import annotations

from pathlib import Path

import pytest
from orrery.kernel import Kernel, KernelError
from orrery.sdk import Bus, ConfigError, PluginError

COUNTER = """
from orrery.sdk import Plugin, hookimpl

class Counter(Plugin):
    name = "counter"
    version = "{version}"

    @hookimpl
    async def orrery_start(self, ctx):
        self.count = getattr(self, "count", 0)
        def answer(event):
            self.count += 1
            return {{"version": "{version}", "count": self.count}}
        ctx.bus.subscribe("count", answer)

    @hookimpl
    def orrery_snapshot(self, ctx):
        return {{"count": self.count}}

    @hookimpl
    def orrery_restore(self, ctx, state):
        self.count = state["count"]
    {extra}
"""


async def test_kernel_bus_has_the_plugin_bus_methods(make_kernel) -> None:
    async with make_kernel() as k:
        assert isinstance(k.bus, Bus)
        got = []
        k.bus.subscribe("a.*", got.append)
        event = await k.bus.publish("a.b", {"n": 1}, key="k1")
        assert got == [event] and event.subject == "k1"
        assert event.source == f"orrery://{k.node_id}/kernel"


async def test_node_id_is_generated_once_and_kept(make_kernel) -> None:
    async with make_kernel() as k:
        first = k.node_id
    async with make_kernel() as k:
        assert k.node_id == first
    async with make_kernel(node_id="edge-7") as k:
        assert k.node_id == "edge-7"


async def test_using_a_kernel_before_start_is_a_clear_error(tmp_path: Path) -> None:
    k = Kernel(state_dir=tmp_path, entry_points=False, env={})
    with pytest.raises(KernelError, match="not started"):
        _ = k.plugins


async def test_reload_swaps_code_and_hands_state_across(make_kernel, write_plugin) -> None:
    path = write_plugin("counter.py", COUNTER.format(version="1.0", extra=""))
    async with make_kernel() as k:
        assert await k.bus.request("count", None) == {"version": "1.0", "count": 1}
        path.write_text(COUNTER.format(version="2.0", extra=""))
        info = await k.reload("counter")
        assert (info.state, info.version) == ("active", "2.0")
        assert await k.bus.request("count", None) == {"version": "2.0", "count": 2}


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("def (:", "SyntaxError"),
        (
            COUNTER.format(
                version="3.0", extra="@hookimpl\n    def orrery_health(self, ctx, extra): pass"
            ),
            "unknown argument",
        ),
        (
            COUNTER.format(version="3.0", extra="").replace(
                "self.count = getattr", "raise RuntimeError('nope'); self.count = getattr"
            ),
            "nope",
        ),
    ],
)
async def test_a_failed_reload_keeps_the_old_version_serving(
    make_kernel, write_plugin, broken: str, reason: str
) -> None:
    path = write_plugin("counter.py", COUNTER.format(version="1.0", extra=""))
    async with make_kernel() as k:
        await k.bus.request("count", None)
        path.write_text(broken)
        with pytest.raises(PluginError, match=reason):
            await k.reload("counter")
        assert k.plugins["counter"].state == "active"
        assert await k.bus.request("count", None) == {"version": "1.0", "count": 2}


async def test_reloading_a_broken_plugin_after_fixing_it_starts_it(
    make_kernel, write_plugin
) -> None:
    path = write_plugin("counter.py", "def (:")
    async with make_kernel() as k:
        assert k.plugins["counter"].state == "failed"
        path.write_text(COUNTER.format(version="1.1", extra=""))
        await k.reload("counter")
        assert k.plugins["counter"].state == "active"
        assert await k.bus.request("count", None) == {"version": "1.1", "count": 1}


async def test_reload_of_unknown_plugin_names_the_known_ones(make_kernel, write_plugin) -> None:
    write_plugin("counter.py", COUNTER.format(version="1.0", extra=""))
    async with make_kernel() as k:
        with pytest.raises(KernelError, match="no plugin named 'nope'.*counter"):
            await k.reload("nope")


AUTHORIZERS = """
from orrery.sdk import Plugin, hookimpl

class Policy(Plugin):
    name = "policy"

    @hookimpl
    async def orrery_authorize(self, principal, action, resource):
        if action == "abstain":
            return None
        return principal == "admin"
"""


async def test_authorize_asks_plugins_and_allows_when_nobody_answers(
    make_kernel, write_plugin
) -> None:
    async with make_kernel() as k:
        assert await k.hooks.authorize("anyone", "publish", "x") is True
    write_plugin("policy.py", AUTHORIZERS)
    async with make_kernel() as k:
        assert await k.hooks.authorize("admin", "publish", "x") is True
        assert await k.hooks.authorize("guest", "publish", "x") is False
        assert await k.hooks.authorize("guest", "abstain", "x") is True


async def test_health_reports_each_active_plugin(make_kernel, write_plugin) -> None:
    write_plugin(
        "sick.py",
        """
        from orrery.sdk import Plugin, hookimpl

        class Sick(Plugin):
            @hookimpl
            async def orrery_health(self, ctx):
                raise ConnectionError("upstream down")
        """,
    )
    write_plugin("fine.py", "from orrery.sdk import Plugin\nclass Fine(Plugin): pass\n")
    async with make_kernel() as k:
        health = await k.health()
        assert health["fine"] == {"ok": True}
        assert health["sick"]["ok"] is False and "upstream down" in health["sick"]["error"]


async def test_plugin_config_reaches_ctx_config(make_kernel, write_plugin, tmp_path: Path) -> None:
    write_plugin(
        "greeter.py",
        (Path(__file__).parents[2] / "examples" / "plugins" / "greeter.py").read_text(),
    )
    toml = tmp_path / "orrery.toml"
    toml.write_text('[plugins.greeter]\ngreeting = "ahoy"\n')
    async with make_kernel(config=toml) as k:
        assert await k.bus.request("greet.hello", {"who": "crew"}) == {"text": "ahoy, crew"}
    async with make_kernel(config=toml, env={"ORRERY_PLUGINS__GREETER__GREETING": "moin"}) as k:
        assert await k.bus.request("greet.hello", {"who": "crew"}) == {"text": "moin, crew"}


async def test_configure_validates_applies_and_persists(make_kernel, write_plugin) -> None:
    write_plugin(
        "greeter.py",
        (Path(__file__).parents[2] / "examples" / "plugins" / "greeter.py").read_text(),
    )
    async with make_kernel() as k:
        assert k.plugin_config("greeter") == {"greeting": "hello"}
        with pytest.raises(ConfigError, match="plugins.greeter.greeting"):
            await k.configure("greeter", {"greeting": ["not", "text"]})
        assert await k.bus.request("greet.hello", {"who": "a"}) == {"text": "hello, a"}
        info = await k.configure("greeter", {"greeting": "hej"})
        assert info.state == "active"
        assert await k.bus.request("greet.hello", {"who": "a"}) == {"text": "hej, a"}
    async with make_kernel() as k:
        assert await k.bus.request("greet.hello", {"who": "b"}) == {"text": "hej, b"}
