"""A plugin module's top level can neither hang the kernel nor end it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .test_watcher import answer, next_event

LOOPS = """
while True:
    pass
"""


async def test_a_module_that_loops_forever_fails_and_the_rest_starts(
    make_kernel, write_plugin
) -> None:
    write_plugin("spinner.py", LOOPS)
    write_plugin("answer.py", answer(42))
    async with make_kernel(config={"kernel": {"import_timeout": 0.5}}) as k:
        spinner = k.plugins["spinner"]
        assert spinner.state == "failed"
        assert "did not finish within 0.5 s" in (spinner.error or "")
        assert "import_timeout" in (spinner.error or "")
        assert k.plugins["answer"].state == "active"
        assert await k.bus.request("answer.ask", None) == 42


async def test_the_kernel_serves_while_a_hot_added_plugin_imports(
    make_kernel, write_plugin, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    write_plugin("answer.py", answer(1))
    async with make_kernel(watch=True, config={"kernel": {"reload_quiet": 0.05}}) as k:
        started = next_event(k, "orrery.plugin.active", lambda e: e.data["name"] == "slow")
        entered = tmp_path / "importing"
        write_plugin(
            "slow.py",
            f"""
            import time
            from pathlib import Path
            Path({str(entered)!r}).touch()
            while not Path({str(flag)!r}).exists():
                time.sleep(0.01)
            {answer(2, name="slow")}
            """.replace("\n            ", "\n"),
        )
        async with asyncio.timeout(10):
            while not entered.exists():
                await asyncio.sleep(0.01)  # polling a file the import creates
        # The import is under way, blocked: the kernel still answers.
        assert await k.bus.request("answer.ask", None) == 1
        assert "slow" not in k.plugins
        flag.touch()
        await asyncio.wait_for(started, 10)
        assert await k.bus.request("slow.ask", None) == 2


async def test_a_hot_added_module_that_loops_is_failed_with_the_reason(
    make_kernel, write_plugin
) -> None:
    async with make_kernel(
        watch=True, config={"kernel": {"import_timeout": 0.5, "reload_quiet": 0.05}}
    ) as k:
        failed = next_event(k, "orrery.plugin.failed", lambda e: e.data["name"] == "spinner")
        write_plugin("spinner.py", LOOPS)
        event = await asyncio.wait_for(failed, 10)
        assert "did not finish within 0.5 s" in event.data["error"]
        assert await k.bus.publish("still.serving", {}) is not None


async def test_os_exit_at_import_fails_the_plugin_not_the_kernel(make_kernel, write_plugin) -> None:
    write_plugin("quitter.py", "import os\nos._exit(3)\n")
    write_plugin("aborter.py", "from os import abort\nabort()\n")
    write_plugin("leaver.py", "import sys\nsys.exit(4)\n")
    write_plugin("answer.py", answer(7))
    async with make_kernel() as k:
        assert k.plugins["quitter"].state == "failed"
        assert "called os._exit(3) while being imported" in (k.plugins["quitter"].error or "")
        assert "called os.abort()" in (k.plugins["aborter"].error or "")
        assert "sys.exit(4)" in (k.plugins["leaver"].error or "")
        assert await k.bus.request("answer.ask", None) == 7
    # Once the import is over, os._exit is the real one again.
    assert os._exit.__module__ in ("posix", "os", "nt")
