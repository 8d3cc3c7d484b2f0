"""The daemon's bearer token: generated once into ``<state-dir>/token`` (mode 0600)."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from .errors import DaemonError

__all__ = ["TOKEN_FILE", "load_or_create_token", "read_token"]

TOKEN_FILE = "token"
log = logging.getLogger("orrery.kernel.daemon")


def load_or_create_token(state_dir: Path) -> str:
    """The token in ``state_dir``, generating it (readable by the owner only) if absent."""
    path = state_dir / TOKEN_FILE
    token = secrets.token_urlsafe(32)
    try:
        # O_EXCL: two daemons racing on a fresh state dir must not both write a token.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(state_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    log.info("generated a new API token in %s", path)
    return token


def read_token(state_dir: Path) -> str:
    """Read the token, warning when the file is readable by others."""
    path = state_dir / TOKEN_FILE
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError as e:
        raise DaemonError(
            f"no API token at {path}; start the daemon once (orrery daemon --state-dir "
            f"{state_dir}) to create it, or pass --token"
        ) from e
    except OSError as e:
        raise DaemonError(f"cannot read the API token {path}: {e}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by other users; run 'chmod 600 %s'", path, path)
    if not token:
        raise DaemonError(f"the API token file {path} is empty; delete it and restart the daemon")
    return token

