"""A sandboxed plugin holds no capability and cannot regain one (#13 item 6), in every
sandbox mode; it runs as nobody where the host lets it reach its files."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

PROBE = '''
import ctypes, os, stat
from orrery.sdk import Plugin, hookimpl

libc = ctypes.CDLL(None, use_errno=True)


def attempt(fn):
    try:
        rc = fn()
    except OSError as e:
        return f"denied: {type(e).__name__} {e.errno}"
    if rc is not None and rc < 0:
        return f"denied: errno {ctypes.get_errno()}"
    return "allowed"


def capeff():
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    data = (ctypes.c_uint32 * 6)()
    header = Header(0x20080522, 0)
    libc.syscall(125, ctypes.byref(header), data)  # capget (x86_64)
    return data[0] | (data[3] << 32)


def clone_newuser():
    pid = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)  # clone(CLONE_NEWUSER|SIGCHLD)
    if pid == 0:
        os._exit(0)
    if pid > 0:
        os.waitpid(pid, 0)
    return pid


def read_status():
    try:
        with open("/proc/self/status") as f:
            return {k: v.strip() for k, _, v in (l.partition(":") for l in f)}
    except OSError:
        return None


class Caps(Plugin):
    @hookimpl
    def orrery_health(self):
        scratch = os.environ["HOME"]
        status = read_status()
        return {
            "uid": os.getuid(),
            "capeff": capeff(),
            "no_new_privs": libc.prctl(39, 0, 0, 0, 0),  # PR_GET_NO_NEW_PRIVS
            "status_capeff": status and status.get("CapEff"),
            "status_nnp": status and status.get("NoNewPrivs"),
            "kmsg": attempt(lambda: open("/proc/kmsg", "rb").read(1)),
            "mknod": attempt(lambda: os.mknod(
                os.path.join(scratch, "mem"), stat.S_IFCHR | 0o600, os.makedev(1, 1))),
            "unshare_user": attempt(lambda: libc.unshare(0x10000000)),
            "clone_user": attempt(clone_newuser),
            "setuid_root": attempt(lambda: os.setuid(0)) if os.getuid() else "n/a",
            "renice": attempt(lambda: os.setpriority(os.PRIO_PROCESS, 0, -5)),
        }
'''


@pytest.fixture
def open_plugin():
    """A plugin in a directory anyone may read (pytest's tmp_path is 0700 under root)."""
    folder = Path(tempfile.mkdtemp(prefix="orrery-caps-"))
    folder.chmod(0o755)
    path = folder / "caps.py"
    path.write_text(textwrap.dedent(PROBE))
    path.chmod(0o644)
    yield path
    shutil.rmtree(folder)


async def test_no_capabilities_in_any_mode(kernel, open_plugin, sandbox_mode, need_layer):
    need_layer("seccomp")
    host = await kernel.sandbox(open_plugin)
    seen = await host.call_hook("orrery_health")
    assert seen["capeff"] == 0
    assert seen["no_new_privs"] == 1
    if seen["status_capeff"] is not None:  # /proc is readable with namespaces
        assert seen["status_capeff"] == "0000000000000000"
        assert seen["status_nnp"] == "1"
    for attack in ("kmsg", "mknod", "unshare_user", "clone_user", "renice"):
        assert seen[attack].startswith("denied"), (attack, seen[attack])
    assert "no capabilities" in host.privileges
    if sandbox_mode in ("bubblewrap", "unshare") and os.geteuid() == 0:
        # A mount namespace hides closed directories (/root with Python below it), so
        # the worker runs as nobody.
        assert seen["uid"] != 0, host.privileges
        assert seen["setuid_root"].startswith("denied")


async def test_stays_root_without_capabilities_when_files_are_closed(
    kernel, plugin_file, sandbox_mode, need_layer
):
    """pytest's tmp_path is 0700: nobody could not import the plugin, so uid 0 stays --
    said plainly -- yet without any capability."""
    need_layer("seccomp")
    if os.geteuid() != 0:
        pytest.skip("runs as root only")
    path = plugin_file("caps", PROBE.replace("from orrery.sdk import Plugin, hookimpl\n", ""))
    path.chmod(0o600)
    host = await kernel.sandbox(path)
    seen = await host.call_hook("orrery_health")
    assert seen["capeff"] == 0 and seen["no_new_privs"] == 1
    assert seen["uid"] == 0 and "stays uid 0" in host.privileges
    assert seen["mknod"].startswith("denied") and seen["kmsg"].startswith("denied")
