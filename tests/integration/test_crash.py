"""SIGKILL a kernel during a burst of journal appends and durable deliveries, restart it
on the same state, and check that nothing acknowledged was lost: no missing append, no
version gap in any stream, every acknowledged publish delivered at least once."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from orrery.kernel.storage import Storage, open_storage  # noqa: TID251

from .cluster import StartNode

#: Acknowledged publishes before the kill: deep inside the 10,000-event burst.
KILL_AFTER = 2_000

BURST = textwrap.dedent(
    """
    import os

    from orrery.sdk import Context, Plugin, hookimpl

    MODE = os.environ.get("BURST_MODE", "burst")
    TOTAL = 10_000


    class Burst(Plugin):
        name = "burst"

        @hookimpl
        async def orrery_start(self, ctx: Context) -> None:
            async def sink(event):
                await ctx.journal.append("delivered", [{"type": "got", "data": event.data}])
                print("END" if event.data == "end" else f"D {event.data}", flush=True)

            ctx.bus.subscribe("burst.*", sink, durable="sink")
            if MODE == "burst":
                ctx.spawn(self.burst(ctx), name="burst")
            else:
                # Delivered after everything kept before the crash: durable order.
                await ctx.bus.publish("burst.end", "end")

        async def burst(self, ctx):
            for i in range(TOTAL):
                version = await ctx.journal.append(
                    "ledger", [{"type": "tick", "data": i}], expected_version=i
                )
                print(f"A {i} {version}", flush=True)
                await ctx.bus.publish("burst.tick", i)
                print(f"P {i}", flush=True)
    """
)


def _seen(wanted: str) -> Callable[[list[str]], bool]:
    """A check for `Node.wait_for` that looks at each new line once."""
    scanned = 0
    found = False

    def check(lines: list[str]) -> bool:
        nonlocal scanned, found
        if not found:
            found = wanted in lines[scanned:]
            scanned = len(lines)
        return found

    return check


def _acknowledged(lines: list[str], kind: str) -> list[list[int]]:
    out = []
    for line in lines:
        parts = line.split()
        if parts and parts[0] == kind and all(p.isdigit() for p in parts[1:]) and len(parts) > 1:
            out.append([int(p) for p in parts[1:]])
    return out


async def _versions(storage: Storage, namespace: str, stream: str) -> list[tuple[int, Any]]:
    return [(e.version, e.data) async for e in storage.journal(namespace).read(stream)]


@pytest.fixture(params=["sqlite", "postgres"])
def storage_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``[storage]`` of the kernel under test; ``-k postgres`` / ``-k sqlite`` picks one."""
    if request.param == "postgres":
        return {"backend": "postgres", "dsn": request.getfixturevalue("pg_database")}
    return {"backend": "sqlite"}


async def test_crash_during_burst_loses_nothing_acknowledged(
    storage_config: dict[str, Any],
    start_node: StartNode,
    plugin_folder: Callable[[str, str], Path],
    tmp_path: Path,
) -> None:
    folder = plugin_folder("burst", BURST)
    state = tmp_path / "state"
    config = {"bus": {"backend": "memory"}, "storage": storage_config}

    node = await start_node("crashy", config, folder, state_dir=state)
    await node.wait_for(_seen(f"P {KILL_AFTER}"), f"{KILL_AFTER} acknowledged publishes")
    await node.kill()
    appended = _acknowledged(node.lines, "A")
    published = {n for (n,) in _acknowledged(node.lines, "P")}
    assert len(published) >= KILL_AFTER and len(published) < 10_000  # killed mid-burst
    assert _acknowledged(node.lines, "D")  # deliveries were under way too

    again = await start_node("crashy", config, folder, state_dir=state, env={"BURST_MODE": "x"})
    await again.wait_for(_seen("END"), "the backlog delivered")
    assert await again.stop() == 0

    storage = await open_storage(
        storage_config["backend"], path=state / "orrery.db", dsn=storage_config.get("dsn")
    )
    try:
        ledger = await _versions(storage, "burst", "ledger")
        # A plugin's durable names are its own: "sink" of plugin "burst".
        kept = await _versions(storage, "orrery.bus", "durable.burst/sink")
        delivered = await _versions(storage, "burst", "delivered")
    finally:
        await storage.close()
    # No version gap in any stream.
    for stream in (ledger, delivered):
        assert [v for v, _ in stream] == list(range(1, len(stream) + 1))
    # The durable subscription's stream was trimmed as it was acknowledged: with the
    # backlog delivered, only the latest event (it carries the version) is left.
    assert len(kept) == 1 and kept[0][0] >= len(published)
    # No acknowledged append missing, each at the version it was acknowledged with.
    by_version = dict(ledger)
    assert all(by_version.get(version) == i for i, version in appended)
    # Every acknowledged publish delivered at least once.
    assert published <= {data for _, data in delivered}
