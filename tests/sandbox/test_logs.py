"""A worker's log flood is rate-limited and truncated by the kernel (#13 item 8), in
every sandbox mode."""

from __future__ import annotations

import logging
import time

FLOOD = '''
class Flood(Plugin):
    @hookimpl
    def orrery_start(self, ctx):
        self.ctx = ctx

    @hookimpl
    def orrery_health(self):
        for i in range(20_000):
            self.ctx.log.info("line %d %s", i, "x" * 100_000)
        return "flooded"
'''


async def test_log_flood_is_rate_limited_and_truncated(
    kernel, plugin_file, caplog, sandbox_mode
):
    burst, rate, line_max = 20, 5.0, 1000
    host = await kernel.sandbox(
        plugin_file("flood", FLOOD), log_burst=burst, log_rate=rate, log_line_max=line_max,
        hook_timeout=60,
    )
    with caplog.at_level(logging.DEBUG, logger="orrery.plugins.flood"):
        began = time.monotonic()
        assert await host.call_hook("orrery_health") == "flooded"
        await host.stop()  # reports what is still counted as dropped
        elapsed = time.monotonic() - began
    records = [r for r in caplog.records if r.name == "orrery.plugins.flood"]
    lines = [r for r in records if r.getMessage().startswith("line ")]
    summaries = [r for r in records if "log records dropped" in r.getMessage()]
    # The bucket allows the burst plus `rate` per second; each admitted line after a drop
    # is preceded by one summary.
    assert len(lines) <= burst + rate * elapsed + 1
    assert summaries
    assert sum(int(r.getMessage().split()[0]) for r in summaries) > 0
    assert all(len(r.getMessage()) <= line_max + 60 for r in records)
    assert lines[0].getMessage().endswith("more characters dropped)")


DENIED = '''
from orrery.sdk import PermissionDenied

class Denied(Plugin):
    @hookimpl
    def orrery_start(self, ctx):
        self.ctx = ctx

    @hookimpl
    async def orrery_health(self):
        denied = 0
        for _ in range(3000):
            try:
                await self.ctx.bus.publish("admin.reset", {})
            except PermissionDenied:
                denied += 1
        return denied
'''


async def test_denied_calls_are_all_audited_but_the_log_gets_a_sample(
    kernel, plugin_file, caplog
):
    host = await kernel.sandbox(plugin_file("denied", DENIED), hook_timeout=60)
    with caplog.at_level(logging.WARNING, logger="orrery.sandbox"):
        assert await host.call_hook("orrery_health") == 3000
    warnings = [r for r in caplog.records if "denied bus.publish" in r.getMessage()]
    assert 1 <= len(warnings) <= 13
    assert host.bridge.denied == 3000
