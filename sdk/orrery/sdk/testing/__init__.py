"""Testing Orrery plugins: a real in-process kernel, a manual clock, small fakes.

Installed as the pytest plugin ``orrery`` (entry point ``pytest11``), so a plugin's test
suite gets the fixtures ``orrery_kernel`` and ``orrery_plugins_dir`` without imports::

    async def test_replies(orrery_kernel):
        clock = ManualClock()
        async with orrery_kernel(MyPlugin, config={"greeting": "hi"}, clock=clock) as k:
            k.assert_state("my-plugin", "active")
            assert await k.request("greet.hello", {"who": "x"}) == {"text": "hi, x"}
            r = await k.http("GET", "/v1/plugins/my-plugin/greetings", query={"limit": 5})
            assert r.status == 200 and r.json() == [...]

Unit tests of single parts get `FakeRequest` (for a route handler) and `MemoryStore`.

This package imports the kernel lazily, inside the fixtures, so ``import orrery.sdk``
stays light.
"""

from orrery.sdk.clock import ManualClock

from ._fakes import FakeRequest, MemoryStore
from ._harness import (
    EventWaiter,
    HarnessFactory,
    KernelHarness,
    matches,
    orrery_kernel,
    orrery_plugins_dir,
)
from ._http import HttpResult

__all__ = [
    "EventWaiter",
    "FakeRequest",
    "HarnessFactory",
    "HttpResult",
    "KernelHarness",
    "ManualClock",
    "MemoryStore",
    "matches",
    "orrery_kernel",
    "orrery_plugins_dir",
]
