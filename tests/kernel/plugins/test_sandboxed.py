"""Sandboxed plugins through the real kernel: same lifecycle, out of process."""

from __future__ import annotations

import asyncio
import sys

import pytest
from orrery.sdk import Event

ECHO = """
import os
import uuid
from orrery.sdk import Plugin, hookimpl

WORKER = uuid.uuid4().hex  # one per process: bubblewrap gives every worker pid 2

class Echo(Plugin):
    name = "echo"
    version = "{version}"
    sandbox = {sandbox}
    permissions = ["bus.subscribe:echo.>", "bus.publish:echo.>"]

    @hookimpl
    def orrery_restore(self, ctx, state):
        self.count = state["count"]

    @hookimpl
    async def orrery_start(self, ctx):
        self.count = getattr(self, "count", 0)

        def tick(event):
            self.count += 1

        ctx.bus.subscribe("echo.tick", tick)
        ctx.bus.subscribe("echo.ask", lambda e: {{"pid": os.getpid(), "worker": WORKER,
                                                  "count": self.count, "version": "{version}"}})

    @hookimpl
    def orrery_snapshot(self, ctx):
        return {{"count": self.count}}
"""


def echo(version: str = "1.0", sandbox: bool = True) -> str:
    return ECHO.format(version=version, sandbox=sandbox)


async def test_a_sandboxed_plugin_runs_in_its_own_process(make_kernel, write_plugin) -> None:
    write_plugin("echo.py", echo())
    async with make_kernel() as k:
        info = k.plugins["echo"]
        assert (info.state, info.sandbox) == ("active", True)
        assert info.layers and "rlimits" in info.layers
        answer = await k.bus.request("echo.ask", None)
        assert answer["pid"] != __import__("os").getpid()
        assert not [m for m in sys.modules if m.startswith("_orrery_folder.echo")]
        assert k.plugins["echo"].to_dict()["layers"] == info.layers


async def test_config_can_force_a_plugin_into_the_sandbox(make_kernel, write_plugin) -> None:
    write_plugin("echo.py", echo(sandbox=False))
    config = {"plugins": {"echo": {"sandbox": {"memory_mb": 256}}}}
    async with make_kernel(config=config) as k:
        assert k.plugins["echo"].sandbox is True
        assert (await k.bus.request("echo.ask", None))["pid"] != __import__("os").getpid()


async def test_a_sandboxed_plugin_config_error_names_the_field(make_kernel, write_plugin) -> None:
    write_plugin(
        "typed.py",
        """
        from pydantic import BaseModel
        from orrery.sdk import Plugin

        class Settings(BaseModel):
            limit: int = 1

        class Typed(Plugin):
            sandbox = True
            Config = Settings
        """,
    )
    async with make_kernel(config={"plugins": {"typed": {"limit": "lots"}}}) as k:
        assert k.plugins["typed"].state == "failed"
        assert "plugins.typed.limit" in (k.plugins["typed"].error or "")


async def test_a_denied_call_raises_in_the_plugin_and_is_audited(make_kernel, write_plugin) -> None:
    write_plugin(
        "nosy.py",
        """
        from orrery.sdk import PermissionDenied, Plugin, hookimpl

        class Nosy(Plugin):
            sandbox = True
            permissions = ["bus.subscribe:nosy.>"]

            @hookimpl
            async def orrery_start(self, ctx):
                async def attempt(event):
                    try:
                        await ctx.bus.publish("secrets.leak", {"x": 1})
                    except PermissionDenied as e:
                        return {"denied": str(e)}
                    return {"denied": None}
                ctx.bus.subscribe("nosy.try", attempt)
        """,
    )
    async with make_kernel() as k:
        audits: list[Event] = []
        k.bus.subscribe("orrery.audit.denied", audits.append)
        answer = await k.bus.request("nosy.try", None)
        assert "bus.publish:secrets.leak" in answer["denied"]
        assert audits and audits[0].data["plugin"] == "nosy"


async def test_reloading_a_sandboxed_plugin_loses_no_event(make_kernel, write_plugin) -> None:
    path = write_plugin("echo.py", echo("1.0"))
    async with make_kernel() as k:
        published = 0
        done = asyncio.Event()

        async def pump() -> None:
            nonlocal published
            while not done.is_set():
                await k.bus.publish("echo.tick", published)
                published += 1
                await asyncio.sleep(0.001)

        pumping = asyncio.create_task(pump())
        pids = set()
        for i in range(5):
            path.write_text(echo(f"1.{i}"))
            await k.reload("echo")
            pids.add((await k.bus.request("echo.ask", None))["worker"])
        done.set()
        await pumping
        for sub in k.manager.runtime("echo").ctx.bus.subscriptions:
            await sub.wait_idle()
        answer = await k.bus.request("echo.ask", None)
    assert answer["version"] == "1.4"
    assert answer["count"] == published
    assert len(pids) == 5  # a new worker each time


@pytest.mark.slow
async def test_a_crash_looping_plugin_ends_failed_and_the_kernel_serves_on(
    make_kernel, write_plugin
) -> None:
    write_plugin(
        "crashy.py",
        """
        import os
        from orrery.sdk import Plugin, hookimpl

        class Crashy(Plugin):
            sandbox = True
            permissions = ["bus.subscribe:crashy.>"]

            @hookimpl
            async def orrery_start(self, ctx):
                ctx.bus.subscribe("crashy.die", lambda e: os._exit(3))
        """,
    )
    write_plugin("echo.py", echo())
    config = {
        "plugins": {
            "crashy": {"sandbox": {"max_restarts": 2, "window_s": 60, "backoff_base": 0.01}}
        }
    }
    async with make_kernel(config=config) as k:
        failed: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        k.bus.subscribe(
            "orrery.plugin.failed",
            lambda e: failed.done() or e.data["name"] != "crashy" or failed.set_result(e),
        )
        for _ in range(10):
            if failed.done():
                break
            await k.bus.publish("crashy.die", None)
            await asyncio.sleep(0.2)
        event = await asyncio.wait_for(failed, 30)
        assert k.plugins["crashy"].state == "failed"
        assert "crash" in event.data["error"].lower() or "circuit" in event.data["error"].lower()
        assert (await k.bus.request("echo.ask", None))["version"] == "1.0"


FAULTY_WORKER = """
import ctypes
import os
from orrery.sdk import Plugin, hookimpl

FAULTS = {{50: "exit", 100: "segfault", 150: "memory"}}

class Worker(Plugin):
    sandbox = True
    permissions = ["bus.subscribe:work.>", "bus.publish:done.>"]

    @hookimpl
    async def orrery_start(self, ctx):
        async def work(event):
            n = event.data
            fault = FAULTS.get(n)
            marker = os.path.join(os.environ["HOME"], f"fault-{{n}}")
            if fault and not os.path.exists(marker):
                open(marker, "w").close()  # each fault once: the redelivery must succeed
                if fault == "exit":
                    os._exit(1)
                if fault == "segfault":
                    ctypes.string_at(0)
                hog = []
                while True:
                    hog.append(bytearray(1 << 20))
            await ctx.bus.publish("done.one", n)

        ctx.bus.subscribe("work.>", work, durable="work")
"""


@pytest.mark.slow
async def test_faults_lose_no_acknowledged_event(make_kernel, write_plugin) -> None:
    # Through the real kernel and its journal-backed durable subscription: every
    # published (acknowledged) event is handled, although the worker dies three ways
    # in the middle of the stream, and an in-process plugin answers throughout.
    write_plugin("worker.py", FAULTY_WORKER.format())
    write_plugin("echo.py", echo(sandbox=False))
    config = {
        "plugins": {"worker": {"sandbox": {"memory_mb": 128, "backoff_base": 0.01,
                                           "max_restarts": 10}}}
    }
    async with make_kernel(config=config) as k:
        done: set[int] = set()
        handled = asyncio.Event()

        def collect(event: Event) -> None:
            done.add(event.data)
            if len(done) == 200:
                handled.set()

        k.bus.subscribe("done.>", collect)
        for n in range(200):
            await k.bus.publish("work.item", n)
            if n % 25 == 0:
                assert (await k.bus.request("echo.ask", None))["version"] == "1.0"
        async with asyncio.timeout(60):
            await handled.wait()
        assert done == set(range(200))
        info = k.plugins["worker"]
        assert (info.state, info.restarts) == ("active", 3)


def test_a_sandboxed_plugin_works_from_a_virtualenv_under_tmp(
    plugin_env, tmp_path, write_plugin
) -> None:
    # bubblewrap gives the worker a private /tmp; an interpreter or virtualenv that lives
    # below /tmp (a CI checkout, a temporary venv) must still be visible to the worker.
    import json
    import subprocess

    assert str(plugin_env).startswith("/tmp/")
    folder = write_plugin("echo.py", echo()).parent
    script = tmp_path / "drive.py"
    script.write_text(
        "import asyncio, json, sys\n"
        "from orrery.kernel import Kernel\n"
        "async def main():\n"
        "    async with Kernel(plugins_dirs=[sys.argv[1]], state_dir=sys.argv[2],\n"
        "                      entry_points=False, env={}, watch=False) as k:\n"
        "        info = k.plugins['echo']\n"
        "        answer = await k.bus.request('echo.ask', None)\n"
        "        print(json.dumps({'state': str(info.state), 'error': info.error,\n"
        "                          'count': answer['count']}))\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [str(plugin_env), str(script), str(folder), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "state": "active",
        "error": None,
        "count": 0,
    }
