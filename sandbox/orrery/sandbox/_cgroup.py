"""cgroup limits for one worker: v1 controllers, or v2 where the hierarchy is writable.

Each worker gets its own cgroup per controller, created under the host's own cgroup
(so an outer container's limits still apply), filled with limits, joined by the worker
before it execs, and removed when the worker is gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CGROUP_ROOT", "CgroupSet", "cgroup_parents", "cgroup_support"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CONTROLLERS = ("memory", "pids", "cpu")
_CPU_PERIOD_US = 100_000


def _own_cgroups() -> dict[str, str]:
    """Controller (or ``""`` for v2) -> this process's cgroup path."""
    out: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


def _v1_dir(controller: str) -> Path | None:
    base = CGROUP_ROOT / controller
    if not (base / "cgroup.procs").exists():
        return None
    own = _own_cgroups().get(controller, "/")
    return base / own.lstrip("/")


def _v2_dir() -> tuple[Path, set[str]] | None:
    """A writable v2 parent with the controllers it can delegate, if any."""
    for base in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        controllers_file = base / "cgroup.controllers"
        if not controllers_file.exists() or (base / "memory").is_dir():
            continue
        try:
            available = set(controllers_file.read_text().split())
        except OSError:
            continue
        usable = available.intersection(_CONTROLLERS)
        if usable and os.access(base, os.W_OK):
            return base, usable
    return None


def cgroup_parents() -> list[Path]:
    """The directories worker cgroups are created in (for sweeping leftovers)."""
    out = [d for c in _CONTROLLERS if (d := _v1_dir(c)) is not None and d.is_dir()]
    found = _v2_dir()
    if found is not None:
        out.append(found[0] / "orrery")
    return out


def cgroup_support() -> tuple[str, dict[str, bool]]:
    """``("v1"|"v2"|"", {controller: usable})`` for memory, pids and cpu."""
    v1 = {c: (d := _v1_dir(c)) is not None and os.access(d, os.W_OK) for c in _CONTROLLERS}
    if any(v1.values()):
        return "v1", v1
    v2 = _v2_dir()
    if v2 is not None:
        return "v2", {c: c in v2[1] for c in _CONTROLLERS}
    return "", dict.fromkeys(_CONTROLLERS, False)


@dataclass
class CgroupSet:
    """The cgroups of one worker incarnation."""

    version: str
    dirs: list[Path] = field(default_factory=list)
    applied: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(
        cls, name: str, *, memory_mb: int, max_pids: int, cpu_quota: float | None
    ) -> CgroupSet:
        """Create and configure the cgroups; controllers that fail are left out.

        Raises `OSError` only when no controller could be set up at all.
        """
        version, usable = cgroup_support()
        # The kernel's pid in the name lets a later kernel sweep it if this one crashes.
        leaf = f"orrery-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        group = cls(version)
        limits = {
            "memory": memory_mb * 1024 * 1024,
            "pids": max_pids,
            "cpu": int(cpu_quota * _CPU_PERIOD_US) if cpu_quota else None,
        }
        if version == "v1":
            for controller in _CONTROLLERS:
                parent = _v1_dir(controller)
                if not usable[controller] or parent is None:
                    continue
                path = parent / leaf
                try:
                    path.mkdir()
                    group.dirs.append(path)
                    group._limit_v1(controller, path, limits[controller])
                except OSError as e:
                    group.applied[controller] = f"error: {e.strerror or e}"
        elif version == "v2":
            found = _v2_dir()
            if found is not None:
                group._create_v2(found[0], found[1], leaf, limits)
        if not group.dirs:
            raise OSError("no cgroup controller could be set up")
        return group

    def _limit_v1(self, controller: str, path: Path, limit: int | None) -> None:
        if controller == "memory":
            _write(path / "memory.limit_in_bytes", limit)
            if (path / "memory.memsw.limit_in_bytes").exists():
                _write(path / "memory.memsw.limit_in_bytes", limit)
            self.applied["memory"] = f"{int(limit or 0) >> 20} MiB"
        elif controller == "pids":
            _write(path / "pids.max", limit)
            self.applied["pids"] = str(limit)
        elif controller == "cpu":
            if limit:
                _write(path / "cpu.cfs_period_us", _CPU_PERIOD_US)
                _write(path / "cpu.cfs_quota_us", limit)
                self.applied["cpu"] = f"{limit / _CPU_PERIOD_US:g} cores"
            else:
                self.applied["cpu"] = "accounted"

    def _create_v2(
        self, base: Path, usable: set[str], leaf: str, limits: dict[str, int | None]
    ) -> None:
        parent = base / "orrery"
        parent.mkdir(exist_ok=True)
        enable = " ".join(f"+{c}" for c in sorted(usable))
        for p in (base, parent):
            try:
                _write(p / "cgroup.subtree_control", enable)
            except OSError:
                pass
        path = parent / leaf
        path.mkdir()
        self.dirs.append(path)
        files = {"memory": "memory.max", "pids": "pids.max", "cpu": "cpu.max"}
        for controller in sorted(usable):
            limit = limits[controller]
            if limit is None:
                continue
            value = f"{limit} {_CPU_PERIOD_US}" if controller == "cpu" else limit
            try:
                _write(path / files[controller], value)
                self.applied[controller] = str(value)
            except OSError as e:
                self.applied[controller] = f"error: {e.strerror or e}"

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files the worker writes its pid to before exec."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def join(self) -> None:
        """Move the calling process in (run in the child between fork and exec)."""
        pid = str(os.getpid()).encode()
        for procs in self.procs_files:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            try:
                out.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return out

    def kill_all(self) -> None:
        """SIGKILL everything inside, repeatedly, so a fork bomb cannot outrun it."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def oom_killed(self) -> bool:
        """Whether the memory limit made the kernel kill a process inside."""
        for d in self.dirs:
            for name, key in (("memory.oom_control", "oom_kill"), ("memory.events", "oom_kill")):
                f = d / name
                if f.exists():
                    try:
                        for line in f.read_text().splitlines():
                            k, _, v = line.partition(" ")
                            if k == key and int(v) > 0:
                                return True
                    except (OSError, ValueError):
                        continue
        return False

    async def remove(self) -> None:
        """Kill what is left and remove the cgroups (they empty once processes are reaped)."""
        self.kill_all()
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # EBUSY until the killed processes are reaped: poll briefly.
                    self.kill_all()
                    await asyncio.sleep(0.01)
        self.dirs.clear()


def _write(path: Path, value: object) -> None:
    with open(path, "w") as f:
        f.write(str(value))
