"""A poison event is dead-lettered and the sandboxed plugin keeps serving (#13 item 9),
through the real kernel, in every sandbox mode."""

from __future__ import annotations

import asyncio
import textwrap

from orrery.kernel import Kernel

POISON = """
import os, signal
from orrery.sdk import Plugin, hookimpl

class Poison(Plugin):
    name = "poison"
    sandbox = True
    permissions = ["bus.subscribe:work.>", "bus.publish:done.>"]

    @hookimpl
    async def orrery_start(self, ctx):
        async def work(event):
            if event.data.get("poison"):
                os.kill(os.getpid(), signal.SIGSEGV)
            await ctx.bus.publish("done.item", event.data)
        ctx.bus.subscribe("work.>", work)
"""


async def test_poison_event_is_dead_lettered_and_the_plugin_keeps_serving(
    tmp_path, sandbox_mode
):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "poison.py").write_text(textwrap.dedent(POISON))
    # max_restarts=1: three deaths on one event would open the circuit if they counted.
    config = {
        "bus": {"max_attempts": 3, "retry_backoff": 0.01},
        "plugins": {"poison": {"sandbox": {
            "max_restarts": 1, "backoff_base": 0.01, "backoff_max": 0.05, "memory_mb": 256,
        }}},
    }
    async with Kernel(
        plugins_dirs=[plugins], state_dir=tmp_path / "state", entry_points=False, env={},
        watch=False, config=config,
    ) as k:
        assert k.plugins["poison"].state == "active"
        letters: asyncio.Queue = asyncio.Queue()
        done: asyncio.Queue = asyncio.Queue()
        k.bus.subscribe("orrery.deadletter.work.>", lambda e: letters.put_nowait(e.data))
        k.bus.subscribe("done.>", lambda e: done.put_nowait(e.data))
        await k.bus.publish("work.item", {"poison": True})
        async with asyncio.timeout(60):
            letter = await letters.get()
        assert letter["event"]["data"] == {"poison": True}
        assert letter["attempts"] == 3
        assert "died while handling an event" in letter["error"]
        assert "SIGSEGV" in letter["error"]
        for n in range(3):
            await k.bus.publish("work.item", {"n": n})
        async with asyncio.timeout(30):
            served = [await done.get() for _ in range(3)]
        assert served == [{"n": 0}, {"n": 1}, {"n": 2}]
        info = k.plugins["poison"]
        assert info.state == "active", info.error
        assert letters.empty()
