"""Through the real kernel: a plugin's queue-group and durable names are its own, joining
another plugin's needs a permission, and a plugin's subscriptions are bounded (issue 13,
items 7 and 8). In process and sandboxed."""

from __future__ import annotations

import pytest

OWNER = """
from orrery.sdk import Plugin, hookimpl

class Owner(Plugin):
    name = "owner"

    @hookimpl
    async def orrery_start(self, ctx):
        self.got = {"group": [], "durable": []}
        ctx.bus.subscribe("shared.jobs", lambda e: self.got["group"].append(e.data),
                          group="workers")
        ctx.bus.subscribe("shared.jobs", lambda e: self.got["durable"].append(e.data),
                          durable="ledger")
        ctx.bus.subscribe("owner.got", lambda e: self.got)
"""

THIEF = """
from orrery.sdk import Plugin, hookimpl

class Thief(Plugin):
    name = "thief"
    sandbox = {sandbox}
    permissions = ["bus.subscribe:shared.>"]

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.bus.subscribe("shared.jobs", lambda e: None, group="workers")
        ctx.bus.subscribe("shared.jobs", lambda e: None, durable="ledger")
"""

JOINER = """
from orrery.sdk import Plugin, hookimpl

class Joiner(Plugin):
    name = "joiner"
    permissions = {permissions!r}

    @hookimpl
    async def orrery_start(self, ctx):
        ctx.bus.subscribe("shared.jobs", lambda e: None, group="owner:workers")
"""

GREEDY = """
from orrery.sdk import Plugin, hookimpl

class Greedy(Plugin):
    name = "greedy"

    @hookimpl
    async def orrery_start(self, ctx):
        for i in range(5):
            ctx.bus.subscribe(f"greedy.{i}", lambda e: None)
"""


@pytest.mark.parametrize("sandbox", [False, True], ids=["in-process", "sandboxed"])
async def test_a_plugin_reusing_another_plugins_names_steals_nothing(
    make_kernel, write_plugin, sandbox: bool
) -> None:
    write_plugin("owner.py", OWNER)
    write_plugin("thief.py", THIEF.format(sandbox=sandbox))
    async with make_kernel() as k:
        assert k.plugins["thief"].state == "active"
        assert k.plugins["thief"].sandbox is sandbox
        for i in range(20):
            await k.bus.publish("shared.jobs", i)
        await k.quiesce()
        got = await k.bus.request("owner.got", None)
        # Every event reaches the owner's group and durable subscription, not half.
        assert sorted(got["group"]) == list(range(20))
        assert sorted(got["durable"]) == list(range(20))


async def test_joining_another_plugins_group_is_explicit_and_permitted(
    make_kernel, write_plugin
) -> None:
    write_plugin("owner.py", OWNER)
    write_plugin("joiner.py", JOINER.format(permissions=[]))
    async with make_kernel() as k:
        joiner = k.plugins["joiner"]
        assert joiner.state == "failed"
        assert "bus.group:owner/workers" in (joiner.error or "")
    write_plugin("joiner.py", JOINER.format(permissions=["bus.group:owner/workers"]))
    async with make_kernel() as k:
        assert k.plugins["joiner"].state == "active"
        for i in range(20):
            await k.bus.publish("shared.jobs", i)
        await k.quiesce()
        got = await k.bus.request("owner.got", None)
        # The joiner shares the owner's group: the owner gets only its share of it.
        assert 0 < len(got["group"]) < 20
        assert sorted(got["durable"]) == list(range(20))


async def test_a_plugin_over_its_subscription_bound_gets_a_clear_error(
    make_kernel, write_plugin
) -> None:
    write_plugin("greedy.py", GREEDY)
    async with make_kernel(config={"bus": {"max_subscriptions_per_plugin": 3}}) as k:
        greedy = k.plugins["greedy"]
        assert greedy.state == "failed"
        assert "already has 3 live subscriptions" in (greedy.error or "")
