"""Kernel side: can the worker run as an unprivileged user and still reach its files?

Permission bits only (ACLs are not read): a path is reachable by ``nobody`` when every
directory above it can be searched by "other" and the path itself gives "other" the
access asked for. In bubblewrap mode a closed directory above a needed path (``/root``
with a Python installed below it, say) is hidden behind an empty tmpfs and the needed
paths are bound back, which also hides whatever else it holds.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable

__all__ = ["closed_ancestors", "nobody", "opens_to_other"]

_KEEP_OPEN = ("/", "/proc", "/dev", "/tmp", "/sys")


def nobody() -> tuple[int, int]:
    """The ``(uid, gid)`` of the unprivileged user workers run as."""
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return 65534, 65534
    return entry.pw_uid, entry.pw_gid


def _other(path: str, bits: int) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True  # a missing path grants nothing and blocks nothing
    return mode & bits == bits


def opens_to_other(path: str, *, write: bool = False) -> bool:
    """Whether "other" may read (or write) ``path`` itself, ignoring its parents."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True
    bits = stat.S_IROTH | (stat.S_IWOTH if write else 0)
    if stat.S_ISDIR(mode):
        bits |= stat.S_IXOTH
    return mode & bits == bits


def closed_ancestors(paths: Iterable[str], *, masked: Iterable[str] = ()) -> list[str]:
    """The topmost directories above ``paths`` that "other" may not search.

    Directories at or below a ``masked`` one (bubblewrap's private /tmp) do not count:
    bubblewrap creates the path to a bound directory itself, searchable.
    """
    masks = [m.rstrip("/") for m in masked]
    out: list[str] = []
    for path in paths:
        path = os.path.abspath(path)
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/" + "/".join(parts[:i])
            if any(parent == m or parent.startswith(m + "/") for m in masks):
                break
            if any(parent == o or parent.startswith(o + "/") for o in out):
                break
            if not _other(parent, stat.S_IXOTH):
                if parent in _KEEP_OPEN:
                    break
                out.append(parent)
                break
    return out
