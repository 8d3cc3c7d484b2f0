"""The daemon's bearer token: generated once into ``<state-dir>/token`` (mode 0600)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from orrery.sdk.client import TOKEN_FILE, read_token

__all__ = ["TOKEN_FILE", "load_or_create_token", "read_token"]

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
