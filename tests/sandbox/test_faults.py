"""Every fault ends with the worker killed and restarted; the kernel keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from orrery.sandbox import (
    CircuitOpen,
    HookTimeout,
    LayerStatus,
    SandboxError,
    WorkerCrashed,
    WorkerStartError,
    _launcher,
    detect_layers,
)

FAULTY = '''
import ctypes, os, time

class Faulty(Plugin):
    permissions = ["bus.subscribe:faulty.>"]

    @hookimpl
    async def orrery_start(self, ctx):
        self.ctx = ctx
        ctx.bus.subscribe("faulty.ping", lambda event: "pong")

    @hookimpl
    def orrery_health(self):
        fault = self.ctx.config["fault"]
        if fault == "exit":
            os._exit(3)
        if fault == "segfault":
            ctypes.string_at(0)
        if fault == "busy":
            while True:
                pass
        if fault == "blocked":
            time.sleep(3600)
        if fault == "memory":
            hog = []
            while True:
                hog.append(bytearray(16 * 1024 * 1024))
        if fault == "memfd":
            # Memory that is not address space: only the cgroup limit catches it.
            fd = os.memfd_create("hog")
            chunk = b"x" * (8 << 20)
            while True:
                os.write(fd, chunk)
        if fault == "forkbomb":
            while True:
                os.fork()
        if fault == "fds":
            files = []
            while True:
                files.append(open("/dev/null"))
        return {"ok": True}
'''

FAULTS = {
    # fault: (limits, expected words in last_error, required layers)
    "exit": ({}, "exited with code 3", ()),
    "segfault": ({}, "SIGSEGV", ()),
    "busy": ({"cpu_seconds": 1, "hook_timeout": 20.0}, "SIGXCPU", ("rlimits",)),
    "blocked": ({"hook_timeout": 0.5}, "hook_timeout", ()),
    "memory": ({"memory_mb": 128}, "memory", ("rlimits",)),
    "memfd": ({"memory_mb": 128}, "OOM kill", ("cgroup",)),
    "forkbomb": ({"max_pids": 24}, "process limit", ("cgroup",)),
    "fds": ({"open_files": 32}, "file descriptors", ("rlimits",)),
}


@contextlib.asynccontextmanager
async def steady_requests(kernel, topic: str):
    """Keep requesting ``topic`` in the background; yields the list of answers."""
    answers: list[object] = []
    errors: list[BaseException] = []
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                answers.append(await kernel.bus.request(topic, len(answers), timeout=5.0))
            except Exception as e:  # noqa: BLE001 - collected and asserted on
                errors.append(e)

    task = asyncio.get_running_loop().create_task(loop())
    try:
        yield answers
    finally:
        stop.set()
        await task
    assert errors == []
    assert answers and all(a == {"echo": i} for i, a in enumerate(answers))


@pytest.fixture(params=["detected", "unshare"])
def namespaces(request, monkeypatch):
    """Run with the namespaces the host offers, then forced onto the unshare fallback
    (used where bubblewrap is missing), which must report faults just as well."""
    if request.param == "unshare":
        if not shutil.which("unshare"):
            pytest.skip("unshare is not installed")
        found = dict(detect_layers())
        found["namespaces"] = LayerStatus("namespaces", True, "unshare", "forced by the test")
        monkeypatch.setattr(_launcher, "detect_layers", lambda: found)
    return request.param


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_restarts_worker(
    kernel, plugin_file, echo_plugin, need_layer, namespaces, fault
):
    limits, expected, layers = FAULTS[fault]
    for layer in layers:
        need_layer(layer)
    if fault == "forkbomb":
        need_layer("namespaces")
    healthy = await kernel.sandbox(echo_plugin, permissions=["bus.subscribe:echo.>"])
    faulty = await kernel.sandbox(
        plugin_file("faulty", FAULTY),
        permissions=["bus.subscribe:faulty.>"],
        config={"fault": fault},
        **limits,
    )
    async with steady_requests(kernel, "echo.steady"):
        with pytest.raises((WorkerCrashed, HookTimeout)):
            await faulty.call_hook("orrery_health")
        async with asyncio.timeout(30):
            await faulty.wait_state("active", min_restarts=1)
        assert expected in (faulty.last_error or ""), faulty.last_error
        assert await kernel.bus.request("faulty.ping", None) == "pong"
    assert healthy.restarts == 0
    assert healthy.state == "active"


async def test_circuit_opens_after_repeated_crashes(kernel, plugin_file):
    failed: list[BaseException] = []
    faulty = await kernel.sandbox(
        plugin_file("faulty", FAULTY),
        permissions=["bus.subscribe:faulty.>"],
        config={"fault": "exit"},
        max_restarts=1,
    )
    faulty.on_failed = lambda host, error: failed.append(error)
    with pytest.raises(WorkerCrashed):
        await faulty.call_hook("orrery_health")
    async with asyncio.timeout(30):
        await faulty.wait_state("active", min_restarts=1)
    with pytest.raises(WorkerCrashed):
        await faulty.call_hook("orrery_health")
    async with asyncio.timeout(30):
        error = await faulty.wait_failed()
    assert isinstance(error, CircuitOpen)
    assert faulty.state == "failed"
    assert failed == [error]
    with pytest.raises(CircuitOpen):
        await faulty.call_hook("orrery_health")


REDELIVER = '''
import os

class Jobs(Plugin):
    permissions = ["bus.subscribe:jobs.>", "bus.publish:done.>"]

    @hookimpl
    def orrery_start(self, ctx):
        async def work(event):
            marker = os.path.join(os.environ["HOME"], "crashed-once")
            if event.data["crash"] and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)  # dies with the event delivered but not acknowledged
            await ctx.bus.publish("done.job", event.data["n"])
        ctx.bus.subscribe("jobs.>", work, durable="jobs")
'''


async def test_unacknowledged_events_are_redelivered(kernel, plugin_file):
    host = await kernel.sandbox(
        plugin_file("jobs", REDELIVER), permissions=["bus.subscribe:jobs.>", "bus.publish:done.>"]
    )
    done: list[int] = []
    all_done = asyncio.Event()

    def collect(event):
        done.append(event.data)
        if len(done) == 5:
            all_done.set()

    kernel.bus.subscribe("done.>", collect)
    for n in range(5):
        await kernel.bus.publish("jobs.new", {"n": n, "crash": n == 2})
    async with asyncio.timeout(30):
        await all_done.wait()
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert host.restarts == 1
    assert "exited with code 1" in (host.last_error or "")


async def test_poison_event_is_given_up_after_repeated_deaths(kernel, plugin_file):
    source = REDELIVER.replace("and not os.path.exists(marker)", "")
    host = await kernel.sandbox(
        plugin_file("poison", source),
        permissions=["bus.subscribe:jobs.>", "bus.publish:done.>"], max_restarts=5,
    )
    sub = next(s for s in kernel.bus.subs if s.pattern == "jobs.>")
    await kernel.bus.publish("jobs.new", {"n": 1, "crash": True})
    async with asyncio.timeout(30):
        await sub.queue.join()
    assert isinstance(sub.failures[0], SandboxError)
    async with asyncio.timeout(30):
        await host.wait_state("active", min_restarts=3)


async def test_start_that_never_returns_times_out(kernel, plugin_file):
    path = plugin_file("stuck", '''
    import time

    class Stuck(Plugin):
        @hookimpl
        def orrery_start(self, ctx):
            time.sleep(3600)
    ''')
    with pytest.raises(WorkerStartError, match="start_timeout"):
        await kernel.sandbox(path, start_timeout=0.5)


async def test_worker_dies_with_the_kernel(tmp_path):
    """A worker whose kernel process is SIGKILLed does not linger."""
    plugin = tmp_path / "idle.py"
    plugin.write_text("from orrery.sdk import Plugin\nclass Idle(Plugin):\n    pass\n")
    script = textwrap.dedent(f"""
        import asyncio, dataclasses, logging, sys
        from orrery.sandbox import PluginTarget, SandboxHost, SandboxLimits, parse_permissions
        from orrery.sandbox import _launcher

        # Nobody removes a SIGKILLed kernel's cgroups: leave them out of this test.
        layers = dict(_launcher.detect_layers())
        layers["cgroup"] = dataclasses.replace(layers["cgroup"], available=False)
        _launcher.detect_layers = lambda: layers

        class Ctx:
            name = "idle"; config = {{}}; log = logging.getLogger("idle")
            bus = services = store = journal = http = None

        async def main():
            host = SandboxHost("orphan-test", PluginTarget.from_path({str(plugin)!r}), Ctx(),
                               permissions=parse_permissions([]), limits=SandboxLimits(),
                               config={{}}, scratch_root={str(tmp_path)!r})
            await host.start()
            print(host.pid, flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
    """)
    kernel = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert kernel.stdout is not None
    worker_pid = int(await asyncio.to_thread(kernel.stdout.readline))
    kernel.send_signal(signal.SIGKILL)
    kernel.wait()
    # A pidfd turns readable when the process exits, even one that is not our child.
    try:
        pidfd = os.pidfd_open(worker_pid)
    except ProcessLookupError:
        return  # already gone and reaped
    exited = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_reader(pidfd, lambda: exited.done() or exited.set_result(None))
    try:
        async with asyncio.timeout(10):
            await exited
    finally:
        asyncio.get_running_loop().remove_reader(pidfd)
        os.close(pidfd)
