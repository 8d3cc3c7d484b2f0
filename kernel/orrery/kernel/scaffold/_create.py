"""Writing a new plugin project to disk."""

from __future__ import annotations

from pathlib import Path

from orrery.kernel.errors import KernelError
from orrery.kernel.plugins._validation import NAME_PATTERN

from ._templates import TEMPLATES

__all__ = ["ScaffoldError", "create_plugin_project"]

_ORRERY_VERSION = "0.1"


class ScaffoldError(KernelError):
    """The project cannot be created (bad name, directory exists)."""


def create_plugin_project(name: str, parent: Path) -> Path:
    """Create ``<parent>/orrery-<name>/`` and return its path.

    Raises `ScaffoldError` for a name that is not a valid plugin name or a directory
    that already exists (nothing is overwritten).
    """
    if not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a valid plugin name; use lower-case letters, digits, '-' "
            f"or '_', starting with a letter (e.g. 'weather' or 'pdf-ingest')"
        )
    root = parent / f"orrery-{name}"
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or remove it")
    package = "orrery_" + name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.replace("_", "-").split("-")) + "Plugin"
    values = {"name": name, "package": package, "cls": cls, "orrery": _ORRERY_VERSION}
    for template_path, template in TEMPLATES.items():
        path = root / template_path.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return root
