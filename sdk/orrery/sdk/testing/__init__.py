"""Testing Orrery plugins: a real in-process kernel, a manual clock, small fakes.

Installed as the pytest plugin ``orrery`` (entry point ``pytest11``), so a plugin's test
suite gets the fixtures ``orrery_kernel`` and ``orrery_plugins_dir`` without imports::

    async def test_replies(orrery_kernel):
        clock = ManualClock()
        async with orrery_kernel(MyPlugin, config={"greeting": "hi"}, clock=clock) as k:
            k.assert_state("my-plugin", "active")
            assert await k.request("greet.hello", {"who": "x"}) == {"text": "hi, x"}

This package imports the kernel lazily, inside the fixtures, so ``import orrery.sdk``
stays light.
"""

# A subpackage of orrery.sdk may use the SDK's private modules (a package's own).
from orrery.sdk._clock import ManualClock

from ._harness import EventWaiter, KernelHarness, matches, orrery_kernel, orrery_plugins_dir

__all__ = [
    "EventWaiter",
    "KernelHarness",
    "ManualClock",
    "matches",
    "orrery_kernel",
    "orrery_plugins_dir",
]
