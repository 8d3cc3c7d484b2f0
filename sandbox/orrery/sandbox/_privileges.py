"""Worker side: give up root before any plugin code runs (ctypes only, every mode).

Order matters: the bounding set and securebits need CAP_SETPCAP, switching uid needs
CAP_SETUID/CAP_SETGID, so those go first; then every capability set is emptied and
no_new_privs is set, so no later execve (of a setuid binary or as uid 0) gains any back.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["drop_privileges"]

_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_PR_SET_NO_NEW_PRIVS = 38
# NOROOT(+LOCKED): uid 0 gains no capabilities on execve; KEEP_CAPS_LOCKED (off and
# locked): a uid change clears them; NO_CAP_AMBIENT_RAISE(+LOCKED).
_SECUREBITS = (1 << 0) | (1 << 1) | (1 << 5) | (1 << 6) | (1 << 7)
_CAPSET = {"x86_64": 126, "aarch64": 91}
_CAPGET = {"x86_64": 125, "aarch64": 90}
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


def effective_caps() -> int:
    """The calling thread's effective capability mask (0 once dropped)."""
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.syscall(_CAPGET[platform.machine()], ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capget failed: {os.strerror(err)}")
    return int(data[0].effective) | (int(data[1].effective) << 32)


def drop_privileges(run_as: tuple[int, int] | None) -> str:
    """Drop every capability, set no_new_privs and, with ``run_as=(uid, gid)``, switch
    to that user. Returns what was done; raises `OSError` if anything is left."""
    machine = platform.machine()
    if machine not in _CAPSET:
        raise OSError(f"no capset syscall number for architecture {machine!r}")
    libc = ctypes.CDLL(None, use_errno=True)
    # Best effort while we may still hold CAP_SETPCAP (bubblewrap may have taken it).
    libc.prctl(_PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0)
    for cap in range(_last_cap() + 1):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if run_as is not None:
        uid, gid = run_as
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.syscall(_CAPSET[machine], ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset failed: {os.strerror(err)}")
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(NO_NEW_PRIVS) failed: {os.strerror(err)}")
    if effective_caps() != 0:
        raise OSError("capabilities are still effective after capset")
    return f"uid {os.getuid()}, no capabilities, no_new_privs"
