"""Spin-then-park in the worker: adaptive, and fair to the plugin's own tasks."""

from __future__ import annotations

import time

import pytest
from orrery.sandbox import SandboxLimits
from orrery.sandbox._spin import SpinWait


class Readable:
    """``readable`` for `SpinWait.wait`: True from the ``after``-th call on."""

    def __init__(self, after: int | None) -> None:
        self.after = after
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.after is not None and self.calls >= self.after


def test_a_frame_arriving_within_the_window_ends_the_spin() -> None:
    spin = SpinWait(window_us=1_000_000)
    readable = Readable(after=3)
    assert spin.wait(readable) is True
    assert readable.calls == 3
    assert spin.active


def test_a_timed_out_spin_turns_spinning_off_until_frames_come_quickly() -> None:
    spin = SpinWait(window_us=20_000)
    quiet = Readable(after=None)
    assert spin.wait(quiet) is False
    assert not spin.active
    calls = quiet.calls

    assert spin.wait(quiet) is False  # off: returns at once, polls nothing
    assert quiet.calls == calls

    spin.woke()  # a frame came right after we parked: worth spinning again
    assert spin.active


def test_a_frame_after_a_long_gap_keeps_spinning_off() -> None:
    spin = SpinWait(window_us=1_000)
    spin.wait(Readable(after=None))
    assert not spin.active
    time.sleep(0.01)
    spin.woke()
    assert not spin.active


def test_zero_window_never_spins() -> None:
    spin = SpinWait(window_us=0)
    readable = Readable(after=1)
    assert spin.wait(readable) is False
    assert readable.calls == 0
    spin.woke()
    assert not spin.active


def test_negative_spin_is_refused_with_the_key_named() -> None:
    with pytest.raises(ValueError, match="spin_us must not be negative"):
        SandboxLimits.from_config({"spin_us": -1})


TICKER = '''
import asyncio

class Ticker(Plugin):
    permissions = ["bus.subscribe:echo.>"]

    @hookimpl
    async def orrery_start(self, ctx):
        self.ticks = 0
        ctx.bus.subscribe("echo.>", lambda event: event.data)

        async def tick():
            while True:
                await asyncio.sleep(0.001)
                self.ticks += 1
        ctx.spawn(tick())

    @hookimpl
    def orrery_health(self):
        return self.ticks
'''


@pytest.mark.parametrize("spin_us", [0, 50_000])
async def test_plugin_timers_keep_running_through_a_flood_of_requests(
    kernel, plugin_file, spin_us
):
    # A window far longer than the gap between requests: the worker never parks during
    # the flood, and the plugin's timer must still get its turns.
    host = await kernel.sandbox(plugin_file("ticker", TICKER), spin_us=spin_us)
    before = await host.call_hook("orrery_health")
    for i in range(2000):
        assert await kernel.bus.request("echo.n", i) == i
    during = await host.call_hook("orrery_health") - before
    assert during >= 10, f"the plugin's 1 ms timer ticked only {during} times in the flood"


async def test_spin_off_and_on_answer_the_same(kernel, echo_plugin):
    for spin_us in (0, 100):
        host = await kernel.sandbox(echo_plugin, name=f"echo{spin_us}", spin_us=spin_us)
        answers = [await kernel.bus.request("echo.x", i) for i in range(50)]
        assert answers == [{"echo": i} for i in range(50)]
        await host.stop()
        kernel.hosts.remove(host)
