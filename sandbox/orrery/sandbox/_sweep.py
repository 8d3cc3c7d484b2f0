"""Leftovers of kernels that died without cleaning up: scratch directories and cgroups.

Every scratch directory holds an ``owner`` file (the kernel's pid and start time) and
every worker cgroup is named ``orrery-<plugin>-<kernel pid>-<random>``. When a sandboxed
plugin starts, leftovers whose kernel is gone are removed: a kernel that was SIGKILLed,
or crashed, leaves nothing behind for long. Directories of live kernels are kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

__all__ = ["OWNER_FILE", "owner_tag", "sweep_cgroups", "sweep_scratch"]

OWNER_FILE = "owner"
_PREFIX = "orrery-"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # Field 22 (starttime) follows the command name, which may hold spaces.
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_tag() -> str:
    """``"<pid> <start time>"`` of this process, as written to ``owner`` files."""
    pid = os.getpid()
    return f"{pid} {_start_time(pid) or '?'}"


def _alive(tag: str) -> bool:
    pid_text, _, started = tag.strip().partition(" ")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now = _start_time(pid)
    if now is None:
        return False
    return started in ("", "?") or now == started  # same pid, other process: gone


def sweep_scratch(root: str) -> list[str]:
    """Remove ``orrery-*`` directories under ``root`` whose kernel is gone."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            tag = Path(entry.path, OWNER_FILE).read_text()
        except OSError:
            continue  # not ours, or still being created
        if not _alive(tag):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def _cgroup_pid(name: str) -> int | None:
    parts = name.rsplit("-", 2)
    if len(parts) != 3 or not name.startswith(_PREFIX):
        return None
    try:
        return int(parts[1])
    except ValueError:
        return None


def sweep_cgroups(parents: list[Path]) -> list[str]:
    """Remove worker cgroups under ``parents`` whose kernel is gone (killing what is
    left inside first)."""
    removed: list[str] = []
    for parent in parents:
        try:
            children = [p for p in parent.iterdir() if p.is_dir()]
        except OSError:
            continue
        for child in children:
            pid = _cgroup_pid(child.name)
            if pid is None or _start_time(pid) is not None:
                continue
            if _remove_cgroup(child):
                removed.append(str(child))
    return removed


def _remove_cgroup(path: Path) -> bool:
    """Kill what is inside and remove it; processes of a kernel that just died may take
    a moment to be reaped, so this retries for up to a second (a rare, one-off wait)."""
    deadline = time.monotonic() + 1.0
    while True:
        with contextlib.suppress(OSError, ValueError):
            for proc in (path / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc), signal.SIGKILL)
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return False
        except OSError:
            if time.monotonic() > deadline:
                return False  # still busy: the next sweep gets it
            time.sleep(0.01)  # waiting for the reaper, not synchronising a test
