"""Scratch directories and cgroups do not outlive their kernel (#13 item 17)."""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import sys
import tempfile
import textwrap
import uuid

from orrery.sandbox import SandboxHost, detect_layers
from orrery.sandbox._cgroup import cgroup_parents

KERNEL = """
import asyncio, sys
from orrery.kernel import Kernel
from orrery.sandbox import LayerStatus, _launcher, detect_layers

mode = sys.argv[4]
if mode != "bubblewrap":  # as the sandbox_mode fixture does
    found = dict(detect_layers())
    found["namespaces"] = LayerStatus("namespaces", mode == "unshare", mode, "forced")
    _launcher.detect_layers = lambda: found

async def main():
    async with Kernel(plugins_dirs=[sys.argv[1]], state_dir=sys.argv[2], entry_points=False,
                      env={}, watch=False) as k:
        assert k.plugins[sys.argv[3]].state == "active", k.plugins[sys.argv[3]].error
        print("ready", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


def _leftovers(name: str) -> list[str]:
    found = glob.glob(os.path.join(tempfile.gettempdir(), f"orrery-{name}-*"))
    for parent in cgroup_parents():
        found += glob.glob(str(parent / f"orrery-{name}-*"))
    return sorted(found)


async def _start_kernel(tmp_path, name: str, mode: str) -> asyncio.subprocess.Process:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / f"{name}.py").write_text(textwrap.dedent(f"""
        from orrery.sdk import Plugin

        class Leftover(Plugin):
            name = "{name}"
            sandbox = True
    """))
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(plugins), str(tmp_path / f"state-{name}"), name,
        "none" if mode == "none" else mode, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        line = await proc.stdout.readline()
    assert line == b"ready\n"
    return proc


async def test_leftovers_of_a_sigkilled_kernel_are_swept_at_start(
    kernel, tmp_path, echo_plugin, sandbox_mode
):
    name = f"left{uuid.uuid4().hex[:6]}"
    proc = await _start_kernel(tmp_path, name, sandbox_mode)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    left = _leftovers(name)
    assert any(p.startswith(tempfile.gettempdir()) for p in left), left
    if detect_layers()["cgroup"].available:
        assert any(p.startswith("/sys/fs/cgroup") for p in left), left
    # The next sandboxed plugin to start, in any kernel, sweeps what the dead one left.
    await kernel.sandbox(echo_plugin)
    assert _leftovers(name) == []


async def test_a_live_kernels_directories_are_kept(kernel, tmp_path, echo_plugin, need_layer):
    need_layer("namespaces")
    name = f"live{uuid.uuid4().hex[:6]}"
    proc = await _start_kernel(tmp_path, name, "bubblewrap")
    try:
        before = _leftovers(name)
        await kernel.sandbox(echo_plugin)
        assert _leftovers(name) == before and before
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


async def test_circuit_open_releases_scratch_and_cgroup(kernel, plugin_file, sandbox_mode):
    path = plugin_file("dies", """
    import os

    class Dies(Plugin):
        @hookimpl
        def orrery_start(self, ctx):
            ctx.spawn(self.die())

        async def die(self):
            os._exit(3)
    """)
    host: SandboxHost = await kernel.sandbox(path, max_restarts=1)
    scratch = host.scratch
    assert scratch and os.path.isdir(scratch)
    async with asyncio.timeout(30):
        await host.wait_failed()
    assert not os.path.exists(os.path.dirname(scratch))
    assert _leftovers("dies") == []

