"""The state directory: one kernel at a time (an ``fcntl.flock``), owner-only permissions.

Plugin stores, the journal, the API token and the node id live here, so the directory
is created 0700 and every file in it 0600 whatever the umask; one that is more open
is reported. The lock file holds the holder's pid: the operating system releases the
lock when the process dies, and a pid left in the file by a process that is gone
(killed, ``os._exit``) is reported when the next kernel takes over.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import stat
import sys
from pathlib import Path

from .errors import StateDirLocked

__all__ = [
    "LOCK_FILE",
    "NODE_ID_FILE",
    "StateLock",
    "check_private",
    "ensure_state_dir",
    "load_node_id",
    "private_file",
    "write_private",
]

LOCK_FILE = "daemon.lock"
NODE_ID_FILE = "node_id"
DIR_MODE = 0o700
FILE_MODE = 0o600
log = logging.getLogger("orrery.kernel")


def ensure_state_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if needed; warn when an existing one is more open."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask
    else:
        check_private(path)
    return path


def check_private(path: Path) -> bool:
    """Warn (once per call) when ``path`` can be read or entered by other users."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return True
    if not mode & 0o077:
        return True
    wanted = DIR_MODE if path.is_dir() else FILE_MODE
    log.warning(
        "%s is mode %04o: other users can read it (plugin stores, the journal, the API "
        "token); run 'chmod %o %s'",
        path,
        mode,
        wanted,
        path,
    )
    return False


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist (an existing file is
    checked, not changed), so whatever writes it later keeps it owner-only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        check_private(path)
        return path
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, mode 0600 (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    tmp.replace(path)
    return path


def load_node_id(state_dir: Path) -> str:
    """This state directory's node id, generated once: event sources and durable
    consumers stay stable across restarts."""
    path = state_dir / NODE_ID_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        check_private(path)
        return existing
    node_id = f"node-{secrets.token_hex(4)}"
    write_private(path, node_id + "\n")
    return node_id


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_holders(path: Path) -> list[int]:
    """Pids holding an flock on ``path``, from /proc/locks (Linux; empty elsewhere)."""
    try:
        st = path.stat()
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    holders = []
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == inode:
            with contextlib.suppress(ValueError):
                holders.append(int(fields[4]))
    return holders


class StateLock:
    """An exclusive, non-blocking lock on ``<state-dir>/daemon.lock`` holding our pid.

    Every kernel takes it (``orrery run``, ``orrery daemon``, an embedded ``Kernel``):
    two kernels on one state directory would share a node id and run the same durable
    work twice.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise `StateDirLocked` naming the holder's pid."""
        if self._fd is not None:
            return
        ensure_state_dir(self.state_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            if holder is None or not _alive(holder):
                # The pid in the file is gone but the lock is held: a process that
                # inherited it (a forked child) keeps it. Name that one instead.
                others = [p for p in _lock_holders(self.path) if p != os.getpid()]
                holder = others[0] if others else holder
            raise StateDirLocked(self.state_dir, holder) from None
        os.fchmod(fd, FILE_MODE)
        previous = _read_pid(fd)
        if previous is not None and previous != os.getpid():
            # A clean stop empties the file: a pid left here means that process ended
            # without stopping (killed, crashed, os._exit). Its lock went with it.
            log.warning(
                "taking over state directory %s from pid %d, which no longer holds it: it "
                "ended without stopping cleanly",
                self.state_dir,
                previous,
            )
        os.ftruncate(fd, 0)
        command = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        os.pwrite(fd, f"{os.getpid()}\n{command}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent). The file stays: deleting it would race a new kernel."""
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
        return int(os.pread(fd, 64, 0).decode().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None
