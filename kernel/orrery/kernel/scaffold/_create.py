"""Writing a new plugin project to disk."""

from __future__ import annotations

from pathlib import Path

from orrery.kernel.errors import KernelError
from orrery.kernel.plugins import NAME_PATTERN
from orrery.sdk.errors import UsageError

from ._package import PACKAGE_FILES
from ._project import PROJECT_FILES

__all__ = ["ScaffoldError", "create_plugin_project", "render"]

_ORRERY_VERSION = "0.1"


class ScaffoldError(KernelError, UsageError):
    """The project cannot be created (bad name, directory exists): the command must change."""


def _names(name: str) -> dict[str, str]:
    words = name.replace("_", "-").split("-")
    cls = "".join(word.capitalize() for word in words)
    return {
        "__NAME__": name,
        "__PACKAGE__": "orrery_" + name.replace("-", "_"),
        "__CLS__": cls,
        "__CONST__": "_".join(words).upper(),
        "__ORRERY__": _ORRERY_VERSION,
        # Sorted as isort sorts them, so the generated package passes ruff as it is.
        "__ERRORS__": ", ".join(sorted(["InvalidInput", f"{cls}Error"])),
    }


def render(template: str, name: str) -> str:
    """Fill in a template's placeholders for plugin ``name``: ``__NAME__`` (the plugin
    name), ``__PACKAGE__`` (``orrery_<name>``), ``__CLS__`` (CamelCase name),
    ``__CONST__`` (the service key constant) and ``__ORRERY__`` (Orrery's version)."""
    for placeholder, value in _names(name).items():
        template = template.replace(placeholder, value)
    return template


def create_plugin_project(name: str, parent: Path) -> Path:
    """Create ``<parent>/orrery-<name>/`` in the standard plugin layout; return its path.

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
    package = _names(name)["__PACKAGE__"]
    files = {f"src/{package}/{path}": text for path, text in PACKAGE_FILES.items()}
    files.update({render(path, name): text for path, text in PROJECT_FILES.items()})
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, name), encoding="utf-8")
    return root
