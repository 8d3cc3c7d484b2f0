"""Several kernel processes sharing NATS and PostgreSQL: fan-out across nodes, a queue
group splitting work, a durable subscription resuming on the surviving node after the
other one is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orrery.kernel.bus.nats import NatsBus  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.sdk import Event

from .cluster import DEADLINE, StartNode

WORKER = textwrap.dedent(
    """
    import asyncio
    import os

    from orrery.sdk import Context, Plugin, hookimpl

    NODE = os.environ["ORRERY_TEST_NODE"]


    class Worker(Plugin):
        name = "worker"

        @hookimpl
        async def orrery_start(self, ctx: Context) -> None:
            async def fan(event):
                await ctx.bus.publish("report.fan", {"node": NODE, "n": event.data})

            async def job(event):
                await ctx.bus.publish("report.job", {"node": NODE, "n": event.data})

            async def durable(event):
                await ctx.bus.publish("report.taken", {"node": NODE, "n": event.data["n"]})
                if event.data.get("stall") == NODE:
                    await asyncio.Event().wait()  # never acknowledged: killed meanwhile
                await ctx.bus.publish("report.durable", {"node": NODE, "n": event.data["n"]})

            ctx.bus.subscribe("fan.>", fan)
            ctx.bus.subscribe("job.*", job, group="workers")
            ctx.bus.subscribe("orders.*", durable, durable="orders")
            await ctx.bus.publish("report.ready", {"node": NODE})
    """
)


class Reports:
    """Report events from the nodes, by kind; awaitable with a deadline."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[dict[str, Any]]] = {}
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.by_kind.setdefault(event.type.split(".", 1)[1], []).append(event.data)
        self._changed.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return self.by_kind.get(kind, [])

    async def wait(self, check: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(DEADLINE):
                while not check():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError as e:
            raise AssertionError(f"never saw {what}; reports: {self.by_kind}") from e


async def test_multinode_nats_postgres_fanout_group_and_durable_failover(
    start_node: StartNode,
    plugin_folder: Callable[[str, str], Path],
    nats_url: str,
    nats_prefix: str,
    pg_database: str,
) -> None:
    folder = plugin_folder("worker", WORKER)
    config = {
        "bus": {"backend": "nats", "url": nats_url, "prefix": nats_prefix, "ack_wait": 2.0},
        "storage": {"backend": "postgres", "dsn": pg_database},
    }
    harness = NatsBus("harness", url=nats_url, prefix=nats_prefix)
    await harness.start()
    try:
        tester = harness.client("orrery://harness/test")
        reports = Reports()
        tester.subscribe("report.>", reports)
        await harness.flush()
        node_a, node_b = await asyncio.gather(
            start_node("node-a", config, folder), start_node("node-b", config, folder)
        )
        await reports.wait(lambda: len(reports.of("ready")) == 2, "both nodes ready")

        # Fan-out: every node gets every event.
        for i in range(5):
            await tester.publish("fan.hello", i)
        await reports.wait(lambda: len(reports.of("fan")) == 10, "10 fan-out reports")
        fan = Counter((r["node"], r["n"]) for r in reports.of("fan"))
        assert set(fan) == {(n, i) for n in ("node-a", "node-b") for i in range(5)}

        # A queue group: each event to exactly one node, and both nodes get work.
        for i in range(60):
            await tester.publish("job.run", i)
        await reports.wait(lambda: len(reports.of("job")) >= 60, "60 job reports")
        await harness.flush()
        jobs = reports.of("job")
        assert sorted(r["n"] for r in jobs) == list(range(60))
        assert {r["node"] for r in jobs} == {"node-a", "node-b"}

        # Durable: node-a stalls on what it takes and is then killed; node-b resumes it.
        for i in range(20):
            await tester.publish("orders.new", {"n": i, "stall": "node-a"})
        await reports.wait(
            lambda: any(r["node"] == "node-a" for r in reports.of("taken")), "node-a taking one"
        )
        await node_a.kill()
        for i in range(20, 30):
            await tester.publish("orders.new", {"n": i, "stall": "node-a"})
        await reports.wait(
            lambda: {r["n"] for r in reports.of("durable")} == set(range(30)),
            "all 30 durable events handled",
        )
        assert {r["node"] for r in reports.of("durable")} == {"node-b"}
        assert await node_b.stop() == 0
    finally:
        await harness.stop()
