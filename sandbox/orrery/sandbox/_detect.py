"""What isolation this host offers: probed once, reported by ``orrery status``."""

from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass

from ._cgroup import cgroup_support
from ._landlock import landlock_abi
from ._limits import LAYER_NAMES
from ._seccomp import seccomp_supported

__all__ = ["LayerStatus", "detect_layers"]


@dataclass(frozen=True)
class LayerStatus:
    """Whether one isolation layer can be used here, and a sentence saying so."""

    name: str
    available: bool
    #: How it is provided: ``bubblewrap``/``unshare``, ``abi 7``, ``v1``/``v2``, ...
    mechanism: str
    detail: str


def _probe(cmd: list[str]) -> str | None:
    """Run a namespace probe; None when it works, else why not."""
    try:
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
    return None


def _namespaces() -> LayerStatus:
    bwrap = shutil.which("bwrap")
    problem = "bubblewrap (bwrap) is not installed"
    if bwrap:
        problem = _probe([
            bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", "/tmp", "--unshare-pid", "--unshare-net", "--die-with-parent", "true",
        ]) or ""
        if not problem:
            return LayerStatus(
                "namespaces", True, "bubblewrap",
                f"bubblewrap ({bwrap}): own pid, ipc, uts and (without the net permission) "
                f"network namespaces, read-only root, private /tmp and /dev",
            )
        problem = f"bubblewrap fails: {problem}"
    unshare = shutil.which("unshare")
    if unshare:
        failure = _probe([unshare, "--fork", "--pid", "--mount-proc", "--net", "true"])
        if failure is None:
            return LayerStatus(
                "namespaces", True, "unshare",
                f"unshare: own pid, mount and (without the net permission) network "
                f"namespaces; the root is made read-only outside scratch and fs.write "
                f"paths, no private /tmp; {problem}",
            )
        problem += f"; unshare fails: {failure}"
    return LayerStatus("namespaces", False, "", f"no namespaces: {problem}")


def _landlock() -> LayerStatus:
    abi = landlock_abi()
    if abi < 1:
        return LayerStatus(
            "landlock", False, "",
            "Landlock is not available (needs Linux >= 5.13 with landlock in the lsm= list)",
        )
    extra = ", TCP bind/connect" if abi >= 4 else ""
    scope = ", signals and abstract sockets scoped" if abi >= 6 else ""
    return LayerStatus(
        "landlock", True, f"abi {abi}",
        f"Landlock ABI {abi}: reads limited to the plugin, the Python installation and "
        f"fs.read paths, writes to a scratch directory and fs.write paths{extra}{scope}",
    )


def _seccomp() -> LayerStatus:
    try:
        with open("/proc/self/status") as f:
            has = any(line.startswith("Seccomp:") for line in f)
    except OSError:
        has = False
    if not has or not seccomp_supported():
        return LayerStatus(
            "seccomp", False, "", "seccomp filters are not supported on this kernel/architecture"
        )
    return LayerStatus(
        "seccomp", True, "bpf",
        "seccomp-BPF: ptrace, mount, kexec, reboot, module loading, namespace changes, bpf, "
        "io_uring and file metadata changes (chmod, chown, utime, xattrs) are denied; "
        "IP/netlink sockets without net, unix sockets without net.unix",
    )


def _rlimits() -> LayerStatus:
    root = os.geteuid() == 0
    note = " (RLIMIT_NPROC is not used: it does nothing for root)" if root else ""
    try:
        resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError) as e:  # pragma: no cover - every Linux has it
        return LayerStatus("rlimits", False, "", f"rlimits unavailable: {e}")
    return LayerStatus(
        "rlimits", True, "setrlimit",
        f"rlimits: address space, CPU seconds, open files, no core dumps{note}",
    )


def _cgroup() -> LayerStatus:
    version, usable = cgroup_support()
    names = [c for c, ok in usable.items() if ok]
    if not names:
        return LayerStatus(
            "cgroup", False, "",
            "no writable cgroup with memory, pids or cpu controllers (run as root, or "
            "delegate a cgroup v2 subtree)",
        )
    missing = [c for c, ok in usable.items() if not ok]
    tail = f"; not available: {', '.join(missing)}" if missing else ""
    return LayerStatus(
        "cgroup", True, version, f"cgroup {version}: limits for {', '.join(names)}{tail}"
    )


@functools.lru_cache(maxsize=1)
def detect_layers() -> dict[str, LayerStatus]:
    """Probe every isolation layer once (cached; ``detect_layers.cache_clear()`` re-probes)."""
    found = {
        "namespaces": _namespaces(),
        "landlock": _landlock(),
        "seccomp": _seccomp(),
        "rlimits": _rlimits(),
        "cgroup": _cgroup(),
    }
    assert tuple(found) == LAYER_NAMES
    return found
