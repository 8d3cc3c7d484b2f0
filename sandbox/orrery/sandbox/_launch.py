"""How a worker is launched: plugin target, command line, rlimits and cgroup join."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import shutil
import signal
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._mounts import ENV_MOUNTS
from ._reach import closed_ancestors, nobody, opens_to_other

__all__ = ["LaunchPlan", "PluginTarget", "worker_sys_path"]

# The bootstrap keeps ssl out while asyncio loads (asyncio works without it, and a
# plugin may still import ssl later): it saves worker start time.
_BOOT = (
    "import sys;sys.path[:0]=sys.argv[2:];sys.modules['ssl']=None;"
    "import asyncio;del sys.modules['ssl'];"
    "from orrery.sandbox._worker import main;main(sys.argv[1:2])"
)
# Shared libraries and devices a Python process needs once Landlock is on.
_SYSTEM_READ = (
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/etc/ld.so.cache",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
)
_SYSTEM_WRITE = ("/dev/null", "/dev/full")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class PluginTarget:
    """Where the worker imports the plugin from.

    Either ``path`` (a folder plugin's ``.py`` file or package directory) or ``ref``
    (``"module:Class"`` of an entry point) plus the ``sys_path`` entries it needs.
    """

    path: str | None = None
    ref: str | None = None
    sys_path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.path is None) == (self.ref is None):
            raise ValueError("a PluginTarget needs exactly one of path= or ref='module:Class'")
        if self.ref is not None and ":" not in self.ref:
            raise ValueError(f"plugin ref {self.ref!r} must look like 'package.module:Class'")
        if self.path is not None:
            object.__setattr__(self, "path", os.path.abspath(self.path))
        object.__setattr__(self, "sys_path", tuple(os.path.abspath(p) for p in self.sys_path))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> PluginTarget:
        """A folder plugin: a ``.py`` file or a package directory."""
        return cls(path=os.fspath(path))

    @classmethod
    def from_ref(cls, ref: str, sys_path: Sequence[str] = ()) -> PluginTarget:
        """An entry-point plugin, ``"package.module:Class"``."""
        return cls(ref=ref, sys_path=tuple(sys_path))

    def read_paths(self) -> list[str]:
        """What the worker must be able to read to import the plugin."""
        return [self.path] if self.path else list(self.sys_path)

    def to_wire(self) -> dict[str, Any]:
        return {"path": self.path, "ref": self.ref, "sys_path": list(self.sys_path)}


def _root_of(module_file: str | None, depth: int) -> str | None:
    if not module_file:
        return None
    return str(Path(module_file).resolve().parents[depth])


def worker_sys_path() -> list[str]:
    """Import roots for the worker: SDK and sandbox sources, site-packages, and the
    kernel's own import path (so entry-point plugins import as they do in the kernel,
    editable installs included).

    The worker runs with ``-I -S``: it never sees the environment's PYTHONPATH or the
    current directory, and does not run ``.pth`` files itself; the kernel's resolved
    path (minus its current directory) is passed explicitly instead.
    """
    import msgspec
    import orrery.sdk
    import pluggy

    sandbox_root = _root_of(__file__, 2)
    candidates = [
        _root_of(orrery.sdk.__file__, 2),
        sandbox_root,
        _root_of(msgspec.__file__, 1),
        _root_of(pluggy.__file__, 1),
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
    ]
    cwd = os.getcwd()
    candidates += [p for p in sys.path if p and os.path.abspath(p) != cwd]
    out: list[str] = []
    for c in candidates:
        if c and c not in out and os.path.isdir(c):
            out.append(c)
    return out


def _python_paths() -> list[str]:
    paths = sysconfig.get_paths()
    # sys.prefix is the virtualenv (its pyvenv.cfg is read at interpreter start) and the
    # executable's folder may be a venv's bin/: both must be visible even when they live
    # under /tmp, which bubblewrap replaces with a private one.
    out = [
        paths["stdlib"],
        paths["platstdlib"],
        sys.base_prefix,
        sys.base_exec_prefix,
        sys.prefix,
        os.path.dirname(os.path.abspath(sys.executable)),
    ]
    return [p for p in dict.fromkeys(out) if p]


@dataclass
class LaunchPlan:
    """Everything needed to exec one worker, decided before the fork."""

    argv: list[str]
    env: dict[str, str]
    landlock: dict[str, Any] | None
    seccomp: dict[str, Any] | None
    preexec: Callable[[], None]
    #: ``(uid, gid)`` the worker switches to before loading the plugin, or None.
    run_as: tuple[int, int] | None = None
    #: Why the worker keeps uid 0 (without capabilities), when it does.
    stays_root: str = ""

    @classmethod
    def build(
        cls,
        *,
        fd: int,
        target: PluginTarget,
        scratch: str,
        namespaces: str,
        landlock: bool,
        seccomp: bool,
        rlimits: dict[int, tuple[int, int]] | None,
        join_cgroup: Callable[[], None] | None,
        net: bool,
        fs_read: Sequence[str],
        fs_write: Sequence[str],
        deny_families: Sequence[int] = (),
    ) -> LaunchPlan:
        """Decide the command line and the in-worker layers for one launch.

        ``namespaces`` is ``"bubblewrap"``, ``"unshare"`` or ``""``.
        """
        paths = worker_sys_path()
        python = sys.executable
        argv = [python, "-I", "-S", "-B", "-c", _BOOT, str(fd), *paths]
        read = [*paths, *_python_paths(), *_SYSTEM_READ, *target.read_paths(), *fs_read]
        write = [scratch, *_SYSTEM_WRITE, *fs_write]
        run_as, masks, stays_root = _choose_user(namespaces, read, fs_write, scratch)
        if namespaces == "bubblewrap":
            read.append("/proc")  # only the sandbox's own processes are visible there
            argv = _bwrap(argv, scratch, read, write, net, masks, switch_user=run_as is not None)
        elif namespaces == "unshare":
            read.append("/proc")
            unshare = shutil.which("unshare") or "unshare"
            ns = [unshare, "--fork", "--pid", "--mount-proc", "--kill-child", "--ipc", "--uts"]
            if not net:
                ns.append("--net")
            argv = [*ns, "--", *argv]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": scratch,
            "TMPDIR": scratch,
            # glibc reserves 64 MiB of address space per malloc arena; keep RLIMIT_AS
            # about real memory.
            "MALLOC_ARENA_MAX": "2",
        }
        if namespaces == "unshare":
            # The namespace's init hides closed directories and makes everything but the
            # writable paths read-only (see `_mounts`).
            env[ENV_MOUNTS] = json.dumps({
                "writable": [p for p in write if not p.startswith("/dev/")],
                "masks": masks,
                "binds": [p for p in [*read, *write]
                          if any(p.startswith(m + "/") for m in masks)],
            })
        limits = dict(rlimits or {})
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded before the fork

        def preexec() -> None:
            # Runs in the child between fork and exec: die with the kernel, join cgroups
            # first (so every process bubblewrap forks is accounted), then cap resources.
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if join_cgroup is not None:
                join_cgroup()
            for which, (soft, hard) in limits.items():
                resource.setrlimit(which, (soft, hard))

        return cls(
            argv=argv,
            env=env,
            landlock={"read": read, "write": write, "deny_tcp": not net} if landlock else None,
            seccomp={"deny_families": list(deny_families)} if seccomp else None,
            preexec=preexec,
            run_as=run_as,
            stays_root=stays_root,
        )


def _choose_user(
    namespaces: str, read: Sequence[str], fs_write: Sequence[str], scratch: str
) -> tuple[tuple[int, int] | None, list[str], str]:
    """``(run_as, dirs hidden behind a tmpfs, why uid 0 stays)``.

    The worker runs as ``nobody`` when it can still reach what it needs: the plugin,
    Python, ``fs.read``/``fs.write`` paths (scratch is handed to nobody). Otherwise it
    stays uid 0 -- still without any capability, under no_new_privs.
    """
    if os.geteuid() != 0:
        return None, [], ""
    uid, gid = nobody()
    closed = [p for p in read if not opens_to_other(p)]
    closed += [p for p in fs_write if not opens_to_other(p, write=True)]
    if namespaces == "bubblewrap":
        masks = closed_ancestors([*read, *fs_write, scratch], masked=["/tmp"])
        if closed:
            return None, masks, f"not readable/writable by uid {uid}: {', '.join(closed[:3])}"
        return (uid, gid), masks, ""
    if namespaces == "unshare":
        # Its init hides closed directories as bubblewrap does (see `_mounts`).
        masks = closed_ancestors([*read, *fs_write, scratch])
        if closed:
            return None, masks, f"not readable/writable by uid {uid}: {', '.join(closed[:3])}"
        return (uid, gid), masks, ""
    closed += closed_ancestors([*read, *fs_write, scratch])
    if closed:
        return None, [], f"uid {uid} cannot reach {', '.join(closed[:3])} (no mount namespace " \
            f"to hide closed directories in)"
    return (uid, gid), [], ""


def _bwrap(
    argv: list[str],
    scratch: str,
    read: list[str],
    write: list[str],
    net: bool,
    masks: Sequence[str],
    *,
    switch_user: bool,
) -> list[str]:
    bwrap = shutil.which("bwrap") or "bwrap"
    cmd = [
        bwrap,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    # Closed directories (/root, say) are hidden too, so that nobody can reach what is
    # bound back below them.
    for mask in masks:
        cmd += ["--tmpfs", mask]
    # The private /tmp and the masks hide host paths below them: bind back what the
    # worker needs.
    hidden = ["/tmp", *masks]
    binds: list[tuple[str, str]] = [
        ("--ro-bind", p) for p in read
        if any(p.startswith(m + "/") for m in hidden) and os.path.exists(p)
    ]
    binds += [("--bind", p) for p in write if os.path.exists(p) and not p.startswith("/dev/")]
    # bubblewrap makes the directories leading to a bind point 0700; nobody must be able
    # to walk them.
    made: set[str] = set()
    for _, path in binds:
        top = next((m for m in hidden if path.startswith(m + "/")), None)
        if top is None:
            continue
        parts = path[len(top) + 1:].split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = top + "/" + "/".join(parts[:i])
            if parent not in made:
                made.add(parent)
                cmd += ["--perms", "0755", "--dir", parent]
    for flag, path in binds:
        cmd += [flag, path, path]
    cmd += [
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
    ]
    if os.geteuid() == 0:
        # Run by root, bubblewrap keeps every capability unless told. The worker drops
        # these last ones itself, after switching to nobody (it needs CAP_SETUID/SETGID
        # for that, CAP_SETPCAP to empty the bounding set). Run by anyone else it keeps
        # none.
        cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETPCAP"]
        if switch_user:
            cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    if not net:
        cmd.append("--unshare-net")
    return [*cmd, "--", *argv]


def rlimits_for(memory_mb: int, cpu_seconds: int, open_files: int) -> dict[int, tuple[int, int]]:
    """The rlimits a worker runs under."""
    mem = memory_mb * 1024 * 1024
    return {
        resource.RLIMIT_AS: (mem, mem),
        # SIGXCPU at the soft limit, SIGKILL a second later if it is ignored.
        resource.RLIMIT_CPU: (cpu_seconds, cpu_seconds + 1),
        resource.RLIMIT_NOFILE: (open_files, open_files),
        resource.RLIMIT_CORE: (0, 0),
    }
