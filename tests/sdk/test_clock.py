"""The SDK clocks: SystemClock and the one ManualClock every plugin's tests use."""

from __future__ import annotations

import asyncio
import time

import pytest
from orrery.sdk import Clock, SystemClock
from orrery.sdk.testing import ManualClock


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(ManualClock(), Clock)


def test_system_clock_reads_real_time() -> None:
    clock = SystemClock()
    before = time.time()
    assert before <= clock.now() <= time.time()
    assert clock.monotonic() <= time.monotonic()
    assert abs(clock() - time.time()) < 60


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock()
    assert clock.now() == clock() == 1_700_000_000.0
    assert clock.monotonic() == 0.0
    assert clock.advance(2.5) == 1_700_000_002.5
    assert clock.monotonic() == 2.5
    assert clock.set(1_700_000_010.0) == 1_700_000_010.0
    assert clock.set(0.0) == 1_700_000_010.0  # the past: stays where it is
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


def test_manual_clock_takes_a_start() -> None:
    assert ManualClock(start=5.0).now() == 5.0


async def test_manual_wait_returns_when_the_clock_reaches_until() -> None:
    clock = ManualClock(start=100.0)
    wake = asyncio.Event()
    waiting = asyncio.create_task(clock.wait(wake, until=110.0))
    while clock.waiters == 0:
        await asyncio.sleep(0)
    clock.advance(10)
    await asyncio.wait_for(waiting, 5)
    assert clock.waiters == 0


async def test_manual_wait_returns_at_once_when_until_has_passed() -> None:
    clock = ManualClock(start=100.0)
    await asyncio.wait_for(clock.wait(asyncio.Event(), until=99.0), 5)


async def test_manual_wait_returns_when_woken() -> None:
    clock = ManualClock()
    wake = asyncio.Event()
    waiting = asyncio.create_task(clock.wait(wake, until=None))
    while clock.waiters == 0:
        await asyncio.sleep(0)
    wake.set()
    await asyncio.wait_for(waiting, 5)


async def test_manual_wait_is_bounded_by_poll_in_real_time() -> None:
    wake = asyncio.Event()
    await asyncio.wait_for(ManualClock().wait(wake, until=None, poll=0.01), 5)
    assert not wake.is_set()  # a timeout is not a wake-up


async def test_manual_sleep_ends_only_once_enough_time_passed() -> None:
    clock = ManualClock(start=0.0)
    sleeping = asyncio.create_task(clock.sleep(30))
    while clock.waiters == 0:
        await asyncio.sleep(0)
    clock.advance(10)
    for _ in range(20):  # let it wake, see 10 < 30 and wait again (loop turns, not time)
        await asyncio.sleep(0)
    assert not sleeping.done()
    assert clock.waiters == 1
    clock.advance(20)
    await asyncio.wait_for(sleeping, 5)


async def test_system_wait_is_bounded_by_until_and_poll() -> None:
    clock = SystemClock()
    wake = asyncio.Event()
    await asyncio.wait_for(clock.wait(wake, until=time.time() - 1), 5)
    await asyncio.wait_for(clock.wait(wake, until=None, poll=0.01), 5)
    assert not wake.is_set()
    wake.set()
    await asyncio.wait_for(clock.wait(wake, until=None), 5)


async def test_a_cancelled_wait_is_cancelled() -> None:
    clock = SystemClock()
    waiting = asyncio.create_task(clock.wait(asyncio.Event(), until=None, poll=60))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
