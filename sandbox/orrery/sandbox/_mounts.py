"""unshare mode: shape the worker's copy of the mount tree (ctypes only; runs as the
namespace's init, before the worker forks).

bubblewrap builds a read-only root itself; with unshare the worker starts with a
writable copy of the host's mounts, where Landlock alone limited writes. Here closed
directories (``/root`` with a Python below it, say) are hidden behind an empty tmpfs with
the needed paths bound back, so the worker can run as nobody; then every mount becomes
read-only (``mount_setattr`` with ``AT_RECURSIVE``) except bind mounts of the scratch
directory, ``fs.write`` paths and ``/dev``.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

__all__ = ["ENV_MOUNTS", "read_only_root"]

#: Environment variable carrying the mount plan (JSON: ``writable``, ``masks``,
#: ``binds``) to the init; removed before the worker starts.
ENV_MOUNTS = "ORRERY_SANDBOX_MOUNTS"

_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MOUNT_SETATTR = 442
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _hide(libc: ctypes.CDLL, masks: list[str], binds: list[str]) -> None:
    """Mount an empty tmpfs on each of ``masks`` and bind ``binds`` back below them."""
    # Open what is bound back first: once the tmpfs is on top, it is out of reach by name.
    held = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in binds if os.path.exists(p)}
    try:
        for mask in masks:
            _check(libc.mount(b"tmpfs", mask.encode(), b"tmpfs", 0, b"mode=0755"),
                   f"hide {mask}")
        for path, fd in held.items():
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, mode=0o755, exist_ok=True)
            elif not os.path.exists(path):
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
            source = f"/proc/self/fd/{fd}".encode()
            _check(libc.mount(source, path.encode(), None, _MS_BIND | _MS_REC, None),
                   f"bind back {path}")
    finally:
        for fd in held.values():
            os.close(fd)


def read_only_root(
    writable: Iterable[str], masks: Iterable[str] = (), binds: Iterable[str] = ()
) -> None:
    """Hide ``masks`` (binding ``binds`` back), then make ``/`` and every mount below it
    read-only, except ``writable`` and ``/dev``.

    Raises `OSError` when the kernel refuses (``mount_setattr`` needs Linux >= 5.12).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    # Nothing done here may reach the host's mount namespace.
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    if masks:
        _hide(libc, list(masks), list(binds))
    keep = [p for p in dict.fromkeys(writable) if os.path.isdir(p) or os.path.isfile(p)]
    for path in keep:
        raw = path.encode()
        _check(libc.mount(raw, raw, None, _MS_BIND | _MS_REC, None), f"bind {path}")
    ro = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
    size = ctypes.sizeof(ro)
    _check(libc.syscall(_MOUNT_SETATTR, _AT_FDCWD, b"/", _AT_RECURSIVE, ctypes.byref(ro),
                        ctypes.c_size_t(size)), "make / read-only")
    rw = _MountAttr(0, _MOUNT_ATTR_RDONLY, 0, 0)
    for path in ["/dev", *keep]:
        _check(libc.syscall(_MOUNT_SETATTR, _AT_FDCWD, path.encode(), 0, ctypes.byref(rw),
                            ctypes.c_size_t(size)), f"make {path} writable")
