"""One daemon per state directory (an ``fcntl.flock``), and ``daemon.json`` for clients."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from orrery.sdk.client import DAEMON_FILE, DaemonAddress, read_daemon_file

from .errors import DaemonLocked

__all__ = [
    "DAEMON_FILE",
    "LOCK_FILE",
    "DaemonAddress",
    "StateLock",
    "read_daemon_file",
    "remove_daemon_file",
    "write_daemon_file",
]

LOCK_FILE = "daemon.lock"


class StateLock:
    """An exclusive, non-blocking lock on ``<state-dir>/daemon.lock`` holding our pid.

    The operating system releases it when the process dies, so a crashed daemon never
    leaves a stale lock behind (unlike a pid file alone).
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise `DaemonLocked` naming the holder's pid."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DaemonLocked(self.state_dir, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent). The file stays: deleting it would race a new daemon."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def write_daemon_file(state_dir: Path, address: DaemonAddress) -> Path:
    """Write ``daemon.json`` atomically, so a client never reads half a file."""
    path = state_dir / DAEMON_FILE
    tmp = path.with_suffix(".json.tmp")
    data = {"url": address.url, "pid": address.pid, "started_at": address.started_at}
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def remove_daemon_file(state_dir: Path) -> None:
    """Remove ``daemon.json`` if it still names this process."""
    current = read_daemon_file(state_dir)
    if current is not None and current.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (state_dir / DAEMON_FILE).unlink()
