"""Making distributions installed after start-up importable, without a restart.

Python reads the ``.pth`` files of site-packages once, at start-up. ``pip install -e``
(and some plain installs) put a package on ``sys.path`` through a new ``.pth`` file,
so a running kernel would find the new entry point but fail to import it
(ModuleNotFoundError) until restarted. A rescan therefore applies the ``.pth`` files
written since this process started, the way `site` does at start-up.
"""

from __future__ import annotations

import importlib
import logging
import os
import site
import sys
import time

__all__ = ["refresh_site_paths"]

log = logging.getLogger("orrery.kernel.discovery")
# .pth files older than this were read by `site` when the interpreter started.
_STARTED = time.time()
# (path, mtime) of the .pth files applied since: each version of a file runs once.
_applied: set[tuple[str, float]] = set()


def _site_dirs() -> list[str]:
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if os.path.isdir(d)]


def refresh_site_paths() -> list[str]:
    """Apply the ``.pth`` files written to site-packages since this process started
    (each once), and drop stale import caches; returns the ``sys.path`` entries added."""
    before = list(sys.path)
    for sitedir in _site_dirs():
        try:
            names = sorted(n for n in os.listdir(sitedir) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            try:
                modified = os.stat(os.path.join(sitedir, name)).st_mtime
            except OSError:
                continue
            key = (os.path.join(sitedir, name), modified)
            if modified < _STARTED or key in _applied:
                continue
            _applied.add(key)
            known = {os.path.normcase(os.path.abspath(p)) for p in sys.path}
            # What `site` does at start-up for each .pth file: path lines that exist are
            # appended to sys.path, import lines run; errors are printed, never raised.
            site.addpackage(sitedir, name, known)
    importlib.invalidate_caches()
    added = [p for p in sys.path if p not in before]
    if added:
        log.info("new import paths from .pth files: %s", ", ".join(added))
    return added
