"""``daemon.json`` for clients; the state-directory lock itself is every kernel's
(`orrery.kernel.state_dir.StateLock`), re-exported here for the daemon's users."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from orrery.kernel.state_dir import LOCK_FILE, StateLock, write_private
from orrery.sdk.client import DAEMON_FILE, DaemonAddress, read_daemon_file

__all__ = [
    "DAEMON_FILE",
    "LOCK_FILE",
    "DaemonAddress",
    "StateLock",
    "read_daemon_file",
    "remove_daemon_file",
    "write_daemon_file",
]

log = logging.getLogger("orrery.kernel.daemon")


def write_daemon_file(state_dir: Path, address: DaemonAddress) -> Path:
    """Write ``daemon.json`` (mode 0600) atomically, so a client never reads half a file.

    Called with the state-directory lock held: a file naming another pid is stale (that
    daemon died without removing it) and is replaced.
    """
    stale = read_daemon_file(state_dir)
    if stale is not None and stale.pid != address.pid:
        log.warning(
            "replacing the stale %s of pid %d (%s), which ended without removing it",
            DAEMON_FILE,
            stale.pid,
            stale.url,
        )
    data = {"url": address.url, "pid": address.pid, "started_at": address.started_at}
    return write_private(state_dir / DAEMON_FILE, json.dumps(data) + "\n")


def remove_daemon_file(state_dir: Path) -> None:
    """Remove ``daemon.json`` if it still names this process."""
    current = read_daemon_file(state_dir)
    if current is not None and current.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (state_dir / DAEMON_FILE).unlink()
