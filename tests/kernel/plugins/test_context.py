"""What a plugin's ctx carries: node id, clock, restored state, live handover, KERNEL."""

from __future__ import annotations

import asyncio
import logging

import pytest
from orrery.sdk import KERNEL, Context, Plugin, PluginError, SystemClock, hookimpl
from orrery.sdk.testing import ManualClock
from pydantic import BaseModel

HANDOVER = """
import threading
from orrery.sdk import Plugin, hookimpl

class Pool(Plugin):
    name = "pool"
    version = "{version}"

    @hookimpl
    def orrery_snapshot(self, ctx):
        return {{"served": self.served}}

    @hookimpl
    def orrery_handover(self, ctx):
        return {{"lock": self.lock}}

    @hookimpl
    async def orrery_start(self, ctx):
        restored = ctx.restored or {{}}
        self.served = restored.get("served", 0)
        self.lock = ctx.handed_over.get("lock") or threading.Lock()
        self.seen = {{"restored": ctx.restored, "handed": sorted(ctx.handed_over)}}

        def ask(event):
            self.served += 1
            return {{"lock": id(self.lock), "version": "{version}", **self.seen}}

        ctx.bus.subscribe("pool.ask", ask)
"""


async def test_a_plugin_sees_the_kernels_node_id_and_clock(orrery_kernel) -> None:
    seen: dict[str, object] = {}

    class Probe(Plugin):
        name = "probe"

        @hookimpl
        async def orrery_start(self, ctx: Context) -> None:
            seen["node"] = ctx.node_id
            seen["clock"] = ctx.clock
            seen["restored"] = ctx.restored
            seen["handed"] = ctx.handed_over
            seen["is_context"] = isinstance(ctx, Context)

    clock = ManualClock(start=1_800_000_000.0)
    async with orrery_kernel(Probe, node_id="node-test", clock=clock) as k:
        k.assert_state("probe", "active")
        assert k.clock is clock
    assert seen == {
        "node": "node-test",
        "clock": clock,
        "restored": None,
        "handed": {},
        "is_context": True,  # the kernel's context implements the SDK protocol
    }


async def test_the_default_clock_is_the_system_clock(orrery_kernel) -> None:
    clocks = []

    class Probe(Plugin):
        name = "probe"

        @hookimpl
        def orrery_start(self, ctx: Context) -> None:
            clocks.append(ctx.clock)

    async with orrery_kernel(Probe):
        pass
    assert isinstance(clocks[0], SystemClock)


async def test_ctx_config_is_the_validated_model(orrery_kernel) -> None:
    class Settings(BaseModel):
        greeting: str = "hello"

    seen = []

    class Greeter(Plugin):
        name = "greeter"
        Config = Settings

        @hookimpl
        def orrery_start(self, ctx: Context[Settings]) -> None:
            seen.append(ctx.config)

    async with orrery_kernel(Greeter, config={"greeting": "hi"}):
        pass
    assert isinstance(seen[0], Settings) and seen[0].greeting == "hi"


async def test_a_plugin_on_the_manual_clock_wakes_when_it_advances(orrery_kernel) -> None:
    class Timer(Plugin):
        name = "timer"

        @hookimpl
        async def orrery_start(self, ctx: Context) -> None:
            async def ring() -> None:
                await ctx.clock.sleep(60)
                await ctx.bus.publish("timer.rang", {"at": ctx.clock.now()})

            ctx.spawn(ring())

    clock = ManualClock(start=1000.0)
    async with orrery_kernel(Timer, clock=clock) as k:
        rang = k.expect("timer.rang")
        while clock.waiters == 0:
            await asyncio.sleep(0)
        clock.advance(59)
        await asyncio.sleep(0)
        assert rang.events == []  # not yet: only 59 of 60 seconds passed
        clock.advance(1)
        [event] = await rang.wait()
    assert event.data == {"at": 1060.0}


async def test_restored_state_and_live_objects_reach_the_new_version(
    make_kernel, write_plugin
) -> None:
    path = write_plugin("pool.py", HANDOVER.format(version="1.0"))
    async with make_kernel() as k:
        first = await k.bus.request("pool.ask", None)
        assert first["restored"] is None and first["handed"] == []
        path.write_text(HANDOVER.format(version="2.0"))
        await k.reload("pool")
        second = await k.bus.request("pool.ask", None)
    assert second["version"] == "2.0"
    assert second["restored"] == {"served": 1}  # already in orrery_start
    assert second["handed"] == ["lock"]
    assert second["lock"] == first["lock"]  # the very same object, not a copy


async def test_orrery_restore_still_runs_before_start(make_kernel, write_plugin) -> None:
    source = """
from orrery.sdk import Plugin, hookimpl

class Keeper(Plugin):
    name = "keeper"
    version = "{version}"

    @hookimpl
    def orrery_snapshot(self, ctx):
        return {{"n": 41}}

    @hookimpl
    def orrery_restore(self, ctx, state):
        self.order = ["restore", state == ctx.restored]

    @hookimpl
    def orrery_start(self, ctx):
        order = getattr(self, "order", []) + ["start"]
        ctx.bus.subscribe("keeper.ask", lambda e: order)
"""
    path = write_plugin("keeper.py", source.format(version="1"))
    async with make_kernel() as k:
        path.write_text(source.format(version="2"))
        await k.reload("keeper")
        assert await k.bus.request("keeper.ask", None) == ["restore", True, "start"]


async def test_a_snapshot_that_is_not_json_is_named_in_a_warning(
    make_kernel, write_plugin, caplog: pytest.LogCaptureFixture
) -> None:
    source = """
import threading
from orrery.sdk import Plugin, hookimpl

class Leaky(Plugin):
    name = "leaky"
    version = "{version}"

    @hookimpl
    def orrery_snapshot(self, ctx):
        return {{"lock": threading.Lock()}}
"""
    path = write_plugin("leaky.py", source.format(version="1"))
    async with make_kernel() as k:
        path.write_text(source.format(version="2"))
        with caplog.at_level(logging.WARNING, logger="orrery.kernel.plugins"):
            await k.reload("leaky")
        assert k.plugins["leaky"].state == "active"
    assert any(
        "leaky" in r.getMessage() and "orrery_handover" in r.getMessage() for r in caplog.records
    )


async def test_a_handover_that_is_not_a_dict_keeps_the_old_version(
    make_kernel, write_plugin
) -> None:
    source = """
from orrery.sdk import Plugin, hookimpl

class Odd(Plugin):
    name = "odd"
    version = "{version}"

    @hookimpl
    def orrery_handover(self, ctx):
        return ["not", "a", "dict"]

    @hookimpl
    def orrery_start(self, ctx):
        ctx.bus.subscribe("odd.version", lambda e: "{version}")
"""
    path = write_plugin("odd.py", source.format(version="1"))
    async with make_kernel() as k:
        path.write_text(source.format(version="2"))
        with pytest.raises(PluginError, match="orrery_handover returned list"):
            await k.reload("odd")
        assert await k.bus.request("odd.version", None) == "1"


async def test_a_sandboxed_plugin_with_orrery_handover_fails_clearly(
    make_kernel, write_plugin
) -> None:
    write_plugin(
        "boxed.py",
        """
from orrery.sdk import Plugin, hookimpl

class Boxed(Plugin):
    name = "boxed"
    sandbox = True

    @hookimpl
    def orrery_handover(self, ctx):
        return {}
""",
    )
    async with make_kernel() as k:
        info = k.plugins["boxed"]
        assert info.state == "failed"
    assert "orrery_handover" in (info.error or "")
    assert "sandbox" in (info.error or "")


async def test_a_sandboxed_plugin_sees_node_id_and_restored_state(
    make_kernel, write_plugin
) -> None:
    source = """
from orrery.sdk import Context, Plugin, hookimpl

class Boxed(Plugin):
    name = "boxed"
    version = "{version}"
    sandbox = True
    permissions = ["bus.subscribe:boxed.>"]

    @hookimpl
    def orrery_snapshot(self, ctx):
        return {{"from": "{version}"}}

    @hookimpl
    def orrery_start(self, ctx):
        seen = {{"node": ctx.node_id, "restored": ctx.restored, "handed": ctx.handed_over,
                 "now": ctx.clock.now() > 0, "is_context": isinstance(ctx, Context)}}
        ctx.bus.subscribe("boxed.ask", lambda e: seen)
"""
    path = write_plugin("boxed.py", source.format(version="1"))
    async with make_kernel(node_id="node-box") as k:
        first = await k.bus.request("boxed.ask", None)
        path.write_text(source.format(version="2"))
        await k.reload("boxed")
        second = await k.bus.request("boxed.ask", None)
    assert first == {
        "node": "node-box",
        "restored": None,
        "handed": {},
        "now": True,
        "is_context": True,  # the worker's context implements the SDK protocol too
    }
    assert second["restored"] == {"from": "1"}


async def test_the_kernel_service_is_reached_through_its_public_key(orrery_kernel) -> None:
    answers = []

    class Watcher(Plugin):
        name = "watcher"

        @hookimpl
        def orrery_start(self, ctx: Context) -> None:
            info = ctx.services.get(KERNEL)
            answers.append((info.snapshot()["node_id"], info.plugins()["total"]))
            answers.append(info.queue_depth())

    async with orrery_kernel(Watcher, node_id="node-k") as k:
        info = k.service(KERNEL)
        assert info.snapshot()["plugins"]["by_state"] == {"active": 1}
        assert isinstance(info.bus_traffic(), dict)  # every KernelInfo method is served
    assert answers[0] == ("node-k", 1)
    assert isinstance(answers[1], dict)
