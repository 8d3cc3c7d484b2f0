"""Hot swap through the kernel: zero loss, rollback, nothing of the old version left."""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path

import pytest
from orrery.sdk import PluginError

COUNTER = """
from orrery.sdk import Plugin, hookimpl

class Counter(Plugin):
    name = "counter"
    version = "{version}"

    @hookimpl
    def orrery_restore(self, ctx, state):
        self.count = state["count"]

    @hookimpl
    async def orrery_start(self, ctx):
        self.count = getattr(self, "count", 0)
        ctx.bus.subscribe("tick", self.on_tick)
        ctx.bus.subscribe("count.get", lambda e: {{"count": self.count, "version": "{version}"}})
        {start_extra}

    {handler}

    @hookimpl
    def orrery_snapshot(self, ctx):
        return {{"count": self.count}}
"""
SYNC = "def on_tick(self, event):\n        self.count += 1"
ASYNC = "async def on_tick(self, event):\n        self.count += 1"


def counter_source(version: str, handler: str = SYNC, start_extra: str = "") -> str:
    return COUNTER.format(version=version, handler=handler, start_extra=start_extra)


async def wait_delivered(k, name: str) -> None:
    """Wait until every subscription of plugin ``name`` has nothing queued or running."""
    ctx = k.manager.runtime(name).ctx
    for sub in ctx.bus.subscriptions:
        await sub.wait_idle()


@pytest.mark.parametrize("handler", [SYNC, ASYNC], ids=["sync", "async"])
async def test_no_event_is_lost_or_doubled_across_100_reloads(
    make_kernel, write_plugin, handler: str
) -> None:
    path = write_plugin("counter.py", counter_source("1.0", handler))
    published = 0
    async with make_kernel() as k:
        done = asyncio.Event()

        async def pump() -> None:
            nonlocal published
            while not done.is_set():
                await k.bus.publish("tick", published)
                published += 1
                if published % 7 == 0:
                    await asyncio.sleep(0)  # let the reloads interleave with publishing

        pumping = asyncio.create_task(pump())
        for i in range(100):
            path.write_text(counter_source(f"1.{i}", handler))
            await k.reload("counter")
            await asyncio.sleep(0)
        done.set()
        await pumping
        await wait_delivered(k, "counter")
        answer = await k.bus.request("count.get", None)
    assert answer == {"count": published, "version": "1.99"}
    assert published > 100


async def test_requests_during_a_swap_are_answered_by_old_or_new(make_kernel, write_plugin) -> None:
    slow_start = "import asyncio\n        await asyncio.sleep(0.05)"
    path = write_plugin("counter.py", counter_source("1.0"))
    async with make_kernel() as k:
        path.write_text(counter_source("2.0", start_extra=slow_start))
        old = k.manager.runtime("counter").ctx
        assert old is not None
        swapping = asyncio.create_task(k.reload("counter"))
        async with asyncio.timeout(10):
            while not old.bus.held:  # the new code is imported off the loop first
                await asyncio.sleep(0.001)
        # The old version is held and the new one is starting.
        answer = await k.bus.request("count.get", None, timeout=5)
        await swapping
    assert answer["version"] == "2.0"


async def test_old_version_leaves_nothing_behind(make_kernel, write_plugin) -> None:
    path = write_plugin("counter.py", counter_source("1.0"))
    async with make_kernel() as k:
        plugins_before = len(k.manager.pm.get_plugins())
        subs_before = len(k.manager.runtime("counter").ctx.bus.subscriptions)
        for i in range(30):
            path.write_text(counter_source(f"1.{i}"))
            await k.reload("counter")
        modules = [m for m in sys.modules if m.startswith("_orrery_folder.counter_")]
        assert len(modules) == 1
        assert len(k.manager.pm.get_plugins()) == plugins_before
        assert len(k.manager.pm.hook.orrery_start.get_hookimpls()) == plugins_before
        assert len(k.manager.runtime("counter").ctx.bus.subscriptions) == subs_before
        gc.collect()
        classes = [
            o
            for o in gc.get_objects()
            if isinstance(o, type)
            and str(vars(o).get("__module__", "")).startswith("_orrery_folder.counter_")
        ]
        assert len(classes) == 1, [c.__module__ for c in classes]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("class (:", "SyntaxError"),
        ("import no_such_module_anywhere\n", "ModuleNotFoundError"),
        (counter_source("9.9", start_extra="raise RuntimeError('cannot start')"), "cannot start"),
        (counter_source("9.9").replace('name = "counter"', 'name = "renamed"'), "rename"),
    ],
)
async def test_failed_reload_rolls_back_announces_and_shows_the_error(
    make_kernel, write_plugin, broken: str, reason: str
) -> None:
    path = write_plugin("counter.py", counter_source("1.0"))
    async with make_kernel() as k:
        await k.bus.publish("tick", 0)
        failures = []
        k.bus.subscribe("orrery.plugin.reload_failed", lambda e: failures.append(e.data))
        path.write_text(broken)
        with pytest.raises(PluginError, match=reason):
            await k.reload("counter")
        info = k.plugins["counter"]
        assert (info.state, info.version) == ("active", "1.0")
        assert reason in (info.error or "")
        assert failures and reason in failures[0]["error"]
        await k.bus.publish("tick", 1)
        assert await k.bus.request("count.get", None) == {"count": 2, "version": "1.0"}
        path.write_text(counter_source("1.1"))
        await k.reload("counter")
        assert k.plugins["counter"].error is None


PROVIDER = """
from orrery.sdk import Plugin, ServiceKey, hookimpl

class Clock:
    def __init__(self, version):
        self.version = version
    def now(self):
        return self.version

class Provider(Plugin):
    name = "provider"

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.services.provide(ServiceKey("clock"), Clock("{version}"))
        ctx.http.route("GET", "/version", lambda request: "{version}")
"""

CONSUMER = """
from orrery.sdk import Plugin, ServiceKey, hookimpl

class Consumer(Plugin):
    name = "consumer"
    requires = {"provider": ""}

    @hookimpl
    async def orrery_start(self, ctx):
        clock = ctx.services.get(ServiceKey("clock"))   # kept, never looked up again
        ctx.bus.subscribe("consumer.ask", lambda e: clock.now())
"""


async def test_dependents_keep_working_and_see_the_new_service(make_kernel, write_plugin) -> None:
    provider = write_plugin("provider.py", PROVIDER.format(version="v1"))
    write_plugin("consumer.py", CONSUMER)
    async with make_kernel() as k:
        assert await k.bus.request("consumer.ask", None) == "v1"
        provider.write_text(PROVIDER.format(version="v2"))
        await k.reload("provider")
        assert k.plugins["consumer"].state == "active"
        assert await k.bus.request("consumer.ask", None) == "v2"
        [route] = k.routes.routes("provider")
        assert route.handler(None) == "v2"


HANDOVER = """
from orrery.sdk import Plugin, ServiceKey, hookimpl

class Handover(Plugin):
    name = "handover"

    @hookimpl
    def orrery_restore(self, state):
        self.shared = state["shared"]

    @hookimpl
    async def orrery_start(self, ctx):
        self.shared = getattr(self, "shared", None) or {{"starts": 0}}
        self.shared["starts"] += 1
        ctx.services.provide(ServiceKey("shared"), self.shared)

    @hookimpl
    def orrery_snapshot(self):
        return {{"shared": self.shared, "version": "{version}"}}
"""


async def test_a_service_object_handed_to_the_next_version_stays_provided(
    make_kernel, write_plugin
) -> None:
    # The new version provides the very object the old one did; the old version's
    # release must not withdraw it.
    path = write_plugin("handover.py", HANDOVER.format(version="v1"))
    async with make_kernel() as k:
        path.write_text(HANDOVER.format(version="v2"))
        await k.reload("handover")
        assert k.plugins["handover"].state == "active"
        assert k.services.get("shared") == {"starts": 2}


async def test_package_plugins_reload_their_submodules_freshly(make_kernel, write_plugin) -> None:
    sub = write_plugin("pkg/answer.py", "VALUE = 1\n")
    write_plugin(
        "pkg/__init__.py",
        """
        from orrery.sdk import Plugin, hookimpl
        from . import answer

        class Pkg(Plugin):
            name = "pkg"

            @hookimpl
            async def orrery_start(self, ctx):
                ctx.bus.subscribe("pkg.value", lambda e: answer.VALUE)
        """,
    )
    async with make_kernel() as k:
        assert await k.bus.request("pkg.value", None) == 1
        stat = sub.stat()
        sub.write_text("VALUE = 2\n")  # same size, same mtime: stale bytecode would win
        import os

        os.utime(sub, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        await k.reload("pkg")
        assert await k.bus.request("pkg.value", None) == 2


async def test_state_reaches_a_plugin_that_was_broken_at_start(
    make_kernel, write_plugin, tmp_path: Path
) -> None:
    path = write_plugin("counter.py", "oops(")
    async with make_kernel() as k:
        assert k.plugins["counter"].state == "failed"
        path.write_text(counter_source("1.0"))
        await k.reload("counter")
        assert k.plugins["counter"].state == "active"
