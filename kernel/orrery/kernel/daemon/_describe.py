"""A plugin's description and author: from its class, else its distribution's metadata.

Sandboxed plugins' classes are never imported in the kernel, so for them (and for
plugins that set neither attribute) the distribution's ``Summary`` and ``Author`` are
used, and a folder plugin's class docstring gives at least a description.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import importlib_metadata

__all__ = ["describe", "plugin_dict"]


@functools.lru_cache(maxsize=512)
def _distribution_meta(distribution: str, version: str) -> tuple[str, str]:
    """``(summary, author)`` of an installed distribution ("" when unknown)."""
    try:
        meta = importlib_metadata.metadata(distribution)
    except importlib_metadata.PackageNotFoundError:
        return "", ""
    summary = meta.get("Summary") or ""
    author = meta.get("Author") or ""
    if not author:
        # "Ada Lovelace <ada@example.org>" is the usual Author-email form: keep the name.
        email = meta.get("Author-email") or ""
        author = email.split("<", 1)[0].strip().strip('"') or email
    return str(summary).strip(), str(author).strip()


def _first_line(doc: str | None) -> str:
    cleaned = inspect.cleandoc(doc or "")
    return cleaned.splitlines()[0].strip() if cleaned else ""


def describe(rt: Any) -> dict[str, str]:
    """``{"description", "author"}`` of one plugin ("" when nothing says); ``rt`` is the
    manager's runtime record (``kernel.manager.runtime(name)``)."""
    candidate = rt.candidate
    spec = candidate.spec
    cls = spec.plugin_class if spec is not None else None
    description = str(getattr(cls, "description", "") or "")
    author = str(getattr(cls, "author", "") or "")
    if (not description or not author) and candidate.distribution:
        summary, dist_author = _distribution_meta(
            candidate.distribution, candidate.distribution_version or ""
        )
        description = description or summary
        author = author or dist_author
    if not description and cls is not None and cls.__doc__ != _base_doc(cls):
        description = _first_line(cls.__doc__)
    return {"description": description, "author": author}


def _base_doc(cls: type[Any]) -> str | None:
    # A class without a docstring of its own inherits none in Python; guard anyway
    # against showing the SDK base class's text as the plugin's description.
    for base in cls.__mro__[1:]:
        if base.__module__.startswith("orrery.sdk"):
            return base.__doc__
    return None


def plugin_dict(rt: Any) -> dict[str, Any]:
    """What the API lists for one plugin: its info plus description and author."""
    return {**rt.info.to_dict(), **describe(rt)}
