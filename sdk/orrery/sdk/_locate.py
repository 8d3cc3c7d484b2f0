"""Finding the running daemon from any directory.

A client that is not told where the daemon is (``--url`` or ``--state-dir``) looks
for it, in order:

1. a ``.orrery`` state directory with a ``daemon.json`` in the current directory or
   one of its parents (as git finds ``.git``);
2. the daemon started last by this user: each daemon records its state directory in
   ``context.json`` under ``$XDG_STATE_HOME/orrery`` (default ``~/.local/state/orrery``)
   and removes the record when it stops.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "CONTEXT_FILE",
    "DAEMON_FILE",
    "DEFAULT_STATE_DIR",
    "context_path",
    "find_state_dir",
    "forget_daemon",
    "remember_daemon",
]

CONTEXT_FILE = "context.json"
DAEMON_FILE = "daemon.json"
#: The state directory a daemon uses when given none (relative to where it runs).
DEFAULT_STATE_DIR = ".orrery"


def context_path() -> Path:
    """Where the user's "last daemon started" record lives."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "orrery" / CONTEXT_FILE


def _read_context() -> dict[str, Any] | None:
    try:
        data = json.loads(context_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("state_dir"), str) else None


def remember_daemon(state_dir: Path, url: str, pid: int) -> None:
    """Record ``state_dir`` as the user's current daemon (best effort: a read-only home
    only costs the convenience)."""
    path = context_path()
    record = {"state_dir": str(Path(state_dir).resolve()), "url": url, "pid": pid}
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".context-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(tmp, path)
    except OSError:
        return


def forget_daemon(state_dir: Path, pid: int) -> None:
    """Remove the record if it still names this daemon (another may have started since)."""
    record = _read_context()
    if record is None:
        return
    if record.get("state_dir") == str(Path(state_dir).resolve()) and record.get("pid") == pid:
        try:
            context_path().unlink()
        except OSError:
            return


def find_state_dir(start: Path | None = None) -> Path | None:
    """The state directory of the daemon to talk to, or None when none is found."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_STATE_DIR
        if (candidate / DAEMON_FILE).is_file():
            return candidate
    record = _read_context()
    if record is not None:
        recorded = Path(record["state_dir"])
        if (recorded / DAEMON_FILE).is_file():
            return recorded
    return None
