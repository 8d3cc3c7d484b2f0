"""Plugin lifecycle through a real kernel: order, failures, release, enable/disable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from orrery.sdk import NoResponders, ServiceNotFound


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_start_in_dependency_order_and_stop_in_reverse(
    make_kernel, recording_plugin, journal_file: Path
) -> None:
    recording_plugin("app", requires={"db": ">=0", "cache": ""})
    recording_plugin("db")
    recording_plugin("cache", requires={"db": ""})
    async with make_kernel() as k:
        assert {n: i.state for n, i in k.plugins.items()} == {
            "app": "active",
            "db": "active",
            "cache": "active",
        }
    assert lines(journal_file) == [
        "start db",
        "start cache",
        "start app",
        "stop app",
        "stop cache",
        "stop db",
    ]


async def test_failures_are_contained_and_explained(
    make_kernel, write_plugin, recording_plugin, journal_file: Path
) -> None:
    recording_plugin("healthy")
    write_plugin("syntax.py", "def (:\n")
    recording_plugin("raises", start_body="raise RuntimeError('database unreachable')")
    recording_plugin("slow", start_body="import asyncio\nawait asyncio.sleep(60)")
    recording_plugin("needs-raises", requires={"raises": ""})
    recording_plugin("needs-ghost", requires={"ghost": ">=1"})
    config = {"plugins": {"slow": {"start_timeout": 0.2}}}
    async with make_kernel(config=config) as k:
        p = k.plugins
        assert p["healthy"].state == "active" and p["healthy"].error is None
        assert p["syntax"].state == "failed" and "SyntaxError" in (p["syntax"].error or "")
        assert p["raises"].state == "failed"
        assert "RuntimeError: database unreachable" in (p["raises"].error or "")
        assert p["slow"].state == "failed" and "within 0.2s" in (p["slow"].error or "")
        assert p["needs-raises"].state == "failed"
        assert "requires 'raises', which failed" in (p["needs-raises"].error or "")
        assert "'ghost>=1', which is not installed" in (p["needs-ghost"].error or "")
        # the kernel still serves
        seen = []
        k.bus.subscribe("ping", seen.append)
        await k.bus.publish("ping", 1)
        assert len(seen) == 1
    assert "stop healthy" in lines(journal_file)
    assert "stop raises" not in lines(journal_file)


async def test_invalid_plugin_config_fails_only_that_plugin(make_kernel, write_plugin) -> None:
    write_plugin(
        "typed.py",
        """
        from pydantic import BaseModel
        from orrery.sdk import Plugin

        class Settings(BaseModel):
            limit: int = 1

        class Typed(Plugin):
            Config = Settings
        """,
    )
    write_plugin("other.py", "from orrery.sdk import Plugin\nclass Other(Plugin): pass\n")
    async with make_kernel(config={"plugins": {"typed": {"limit": "lots"}}}) as k:
        assert k.plugins["typed"].state == "failed"
        assert "plugins.typed.limit" in (k.plugins["typed"].error or "")
        assert k.plugins["other"].state == "active"


RESOURCEFUL = """
import asyncio
from pathlib import Path
from orrery.sdk import Plugin, ServiceKey, hookimpl

MARK = Path({mark!r})

class Resourceful(Plugin):
    name = "resourceful"

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.bus.subscribe("res.ask", lambda event: "answer")
        ctx.services.provide(ServiceKey("res"), object())
        ctx.http.route("GET", "/thing", lambda request: {{}})

        async def forever():
            try:
                await asyncio.Event().wait()
            finally:
                MARK.write_text("cancelled")

        ctx.spawn(forever(), name="forever")
        {tail}
"""


async def test_everything_obtained_through_ctx_is_released_on_disable(
    make_kernel, write_plugin, tmp_path: Path
) -> None:
    mark = tmp_path / "mark"
    write_plugin("resourceful.py", RESOURCEFUL.format(mark=str(mark), tail="pass"))
    async with make_kernel() as k:
        assert await k.bus.request("res.ask", None) == "answer"
        assert k.services.get("res") is not None and len(k.routes.routes("resourceful")) == 1
        await k.disable("resourceful")
        assert k.plugins["resourceful"].state == "stopped"
        with pytest.raises(NoResponders):
            await k.bus.request("res.ask", None)
        with pytest.raises(ServiceNotFound):
            k.services.get("res")
        assert k.routes.routes("resourceful") == []
        assert mark.read_text() == "cancelled"


async def test_a_failed_start_releases_what_it_obtained_first(
    make_kernel, write_plugin, tmp_path: Path
) -> None:
    mark = tmp_path / "mark"
    tail = "await asyncio.sleep(0)\n        raise ValueError('half started')"
    write_plugin("resourceful.py", RESOURCEFUL.format(mark=str(mark), tail=tail))
    async with make_kernel() as k:
        assert k.plugins["resourceful"].state == "failed"
        with pytest.raises(NoResponders):
            await k.bus.request("res.ask", None)
        with pytest.raises(ServiceNotFound):
            k.services.get("res")
        assert k.routes.routes() == []
        assert mark.read_text() == "cancelled"


async def test_disable_stops_dependents_and_enable_brings_them_back(
    make_kernel, recording_plugin, journal_file: Path
) -> None:
    recording_plugin("base")
    recording_plugin("top", requires={"base": ""})
    async with make_kernel() as k:
        await k.disable("base")
        assert (k.plugins["base"].state, k.plugins["top"].state) == ("stopped", "resolved")
        assert k.plugins["base"].enabled is False
        await k.enable("base")
        assert (k.plugins["base"].state, k.plugins["top"].state) == ("active", "active")
    assert lines(journal_file)[:6] == [
        "start base",
        "start top",
        "stop top",
        "stop base",
        "start base",
        "start top",
    ]


async def test_disabled_plugins_stay_disabled_after_a_restart(
    make_kernel, recording_plugin
) -> None:
    recording_plugin("sleepy")
    async with make_kernel() as k:
        await k.disable("sleepy")
    async with make_kernel() as k:
        assert k.plugins["sleepy"].state == "resolved"
        assert k.plugins["sleepy"].enabled is False
        await k.enable("sleepy")
    async with make_kernel() as k:
        assert k.plugins["sleepy"].state == "active"


async def test_config_can_disable_a_plugin(make_kernel, recording_plugin) -> None:
    recording_plugin("off")
    async with make_kernel(config={"plugins": {"off": {"enabled": False}}}) as k:
        assert k.plugins["off"].state == "resolved" and not k.plugins["off"].enabled


async def test_state_changes_are_published_on_the_bus(make_kernel, recording_plugin) -> None:
    recording_plugin("watched")
    async with make_kernel() as k:
        seen = []
        k.bus.subscribe("orrery.plugin.>", lambda e: seen.append((e.type, e.data["name"])))
        await k.disable("watched")
        assert seen == [("orrery.plugin.stopping", "watched"), ("orrery.plugin.stopped", "watched")]


async def test_duplicate_names_fail_the_second_plugin(make_kernel, write_plugin) -> None:
    write_plugin("a.py", "from orrery.sdk import Plugin\nclass A(Plugin):\n    name = 'same'\n")
    write_plugin("b.py", "from orrery.sdk import Plugin\nclass B(Plugin):\n    name = 'same'\n")
    async with make_kernel() as k:
        assert k.plugins["same"].state == "active"
        assert k.plugins["same#2"].state == "failed"
        assert "already used by" in (k.plugins["same#2"].error or "")


async def test_a_plugin_whose_stop_raises_does_not_block_the_others(
    make_kernel, recording_plugin, write_plugin, journal_file: Path
) -> None:
    recording_plugin("first")
    write_plugin(
        "grumpy.py",
        """
        from orrery.sdk import Plugin, hookimpl

        class Grumpy(Plugin):
            requires = {"first": ""}

            @hookimpl
            def orrery_stop(self, ctx):
                raise OSError("disk full")
        """,
    )
    async with make_kernel() as k:
        assert k.plugins["grumpy"].state == "active"
    assert lines(journal_file)[-1] == "stop first"


async def test_entry_point_plugins_are_discovered_by_default(
    make_kernel, install_distribution
) -> None:
    install_distribution(
        "orrery-echo",
        "2.0.1",
        "orrery_echo",
        """
        from orrery.sdk import Plugin, hookimpl

        class Echo(Plugin):
            @hookimpl
            async def orrery_start(self, ctx):
                ctx.bus.subscribe("echo", lambda e: e.data)
        """,
        {"echo": "orrery_echo:Echo"},
    )
    async with make_kernel(entry_points=True) as k:
        info = k.plugins["echo"]
        assert (info.state, info.version) == ("active", "2.0.1")
        assert await k.bus.request("echo", {"x": 1}) == {"x": 1}
    async with make_kernel(entry_points=False) as k:
        assert "echo" not in k.plugins


async def test_spawned_task_crash_is_logged_not_silent(
    make_kernel, write_plugin, caplog: pytest.LogCaptureFixture
) -> None:
    write_plugin(
        "crashy.py",
        """
        from orrery.sdk import Plugin, hookimpl

        class Crashy(Plugin):
            @hookimpl
            async def orrery_start(self, ctx):
                async def boom():
                    raise KeyError("lost")
                self.task = ctx.spawn(boom(), name="boom")
        """,
    )
    async with make_kernel() as k:
        task = k.manager.runtime("crashy").instance.plugin.task  # type: ignore[union-attr]
        await asyncio.wait([task])
        await asyncio.sleep(0)  # let the done-callback run
        assert "background task crashy:boom crashed" in caplog.text


async def test_in_process_and_sandboxed_instances_share_one_protocol(
    make_kernel, write_plugin
) -> None:
    from orrery.kernel.plugins import PluginInstance

    for name, sandbox in (("inside", False), ("outside", True)):
        write_plugin(
            f"{name}.py",
            f"""
            from orrery.sdk import Plugin, hookimpl

            class P(Plugin):
                name = "{name}"
                sandbox = {sandbox}

                @hookimpl
                def orrery_health(self, ctx):
                    return {{"ok": True, "who": "{name}"}}
            """,
        )
    async with make_kernel() as k:
        for name in ("inside", "outside"):
            instance = k.manager.runtime(name).instance
            assert isinstance(instance, PluginInstance)
            assert instance.state == "active"
        assert await k.health() == {
            "inside": {"ok": True, "who": "inside"},
            "outside": {"ok": True, "who": "outside"},
        }
