"""House rules checked on the source tree (DESIGN.md section 10).

- No module imports an underscore name from another module (``from x import _y``).
- No module imports a private module (``_x``) of another package: a package's private
  modules are for that package's own modules (``from ._wire import decode_event``
  inside the package is fine), everyone else uses what its ``__init__`` re-exports.
- No file is longer than 450 lines.

Known violations in code being restructured by others are listed below, each with why;
the lists only shrink. An entry that no longer matches fails the test, so a fixed
violation cannot linger in the list.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 450
#: Source roots and the top-level name their files are importable under.
SOURCE_ROOTS = [REPO / "sdk", REPO / "kernel", REPO / "sandbox"] + sorted(
    (REPO / "plugins").glob("*/src")
)
LENGTH_CHECKED = ["sdk", "kernel", "sandbox", "plugins", "tests", "bench", "examples"]

# -- allow-lists: violations owned by other areas, to be emptied ------------------------
# Each entry is "path: what is imported". Remove an entry when the code is fixed.
ALLOWED_PRIVATE_IMPORTS: set[str] = {
    # daemon (kernel/orrery/kernel/daemon and the kernel CLI): "the daemon imports only
    # public orrery.kernel names" (issue 12 section 1)
    "kernel/orrery/kernel/cli/_daemon.py: orrery.kernel._kernel",
    "kernel/orrery/kernel/cli/_daemon.py: orrery.kernel._logging",
    "kernel/orrery/kernel/cli/_plugins.py: orrery.kernel._config",
    "kernel/orrery/kernel/cli/_run.py: orrery.kernel._kernel",
    "kernel/orrery/kernel/cli/_run.py: orrery.kernel._logging",
    "kernel/orrery/kernel/daemon/_app.py: orrery.kernel._introspection",
    "kernel/orrery/kernel/daemon/_app.py: orrery.kernel._kernel",
    "kernel/orrery/kernel/daemon/_http.py: orrery.kernel._introspection",
    "kernel/orrery/kernel/daemon/_http.py: orrery.kernel._kernel",
    "kernel/orrery/kernel/daemon/_server.py: orrery.kernel._kernel",
}
ALLOWED_LONG_FILES: set[str] = set()


@dataclass(frozen=True)
class Violation:
    path: str
    imported: str

    def __str__(self) -> str:
        return f"{self.path}: {self.imported}"


def _source_files() -> Iterator[tuple[Path, Path]]:
    for root in SOURCE_ROOTS:
        for path in sorted(root.rglob("*.py")):
            if not any(part.startswith(".") or part == "build" for part in path.parts):
                yield root, path


def _module_name(root: Path, path: Path) -> tuple[str, bool]:
    """The dotted module name of ``path`` and whether it is a package ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    for root in SOURCE_ROOTS:
        if (root / relative).with_suffix(".py").is_file() or (root / relative).is_dir():
            return True
    return False


def _resolve(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _private_module_violation(importer_package: str, target: str) -> bool:
    """Whether importing module ``target`` reaches into another package's private module."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if _private(part):
            owner = ".".join(parts[:i])
            return owner != importer_package
    return False


def _violations(root: Path, path: Path) -> Iterator[Violation]:
    name, is_package = _module_name(root, path)
    package = name if is_package else name.rpartition(".")[0]
    shown = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _private_module_violation(package, alias.name):
                    yield Violation(shown, alias.name)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(package, node.module, node.level)
            if source == "__future__":
                continue
            if _private_module_violation(package, source):
                yield Violation(shown, source)
                continue
            for alias in node.names:
                if not _private(alias.name):
                    continue
                submodule = f"{source}.{alias.name}"
                if _is_module(submodule):
                    if _private_module_violation(package, submodule):
                        yield Violation(shown, submodule)
                else:
                    yield Violation(shown, f"{source}.{alias.name} (an underscore name)")


def test_no_module_imports_private_names_or_other_packages_private_modules() -> None:
    found = {str(v) for root, path in _source_files() for v in _violations(root, path)}
    new = sorted(found - ALLOWED_PRIVATE_IMPORTS)
    assert not new, (
        "these imports reach into private names or another package's private modules; "
        "import what the package's __init__ re-exports (or make the name public):\n"
        + "\n".join(new)
    )
    stale = sorted(ALLOWED_PRIVATE_IMPORTS - found)
    assert not stale, "fixed: remove from ALLOWED_PRIVATE_IMPORTS:\n" + "\n".join(stale)


def test_no_file_is_longer_than_450_lines() -> None:
    long_files = {}
    for folder in LENGTH_CHECKED:
        for path in (REPO / folder).rglob("*.py"):
            if any(part.startswith(".") for part in path.relative_to(REPO).parts):
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                long_files[str(path.relative_to(REPO))] = lines
    new = {p: n for p, n in sorted(long_files.items()) if p not in ALLOWED_LONG_FILES}
    assert not new, f"split these into modules of at most {MAX_LINES} lines: {new}"
    stale = sorted(ALLOWED_LONG_FILES - set(long_files))
    assert not stale, "now short enough: remove from ALLOWED_LONG_FILES:\n" + "\n".join(stale)


# -- the checker itself -----------------------------------------------------------------


def _check(tmp_path: Path, relative: str, source: str) -> list[str]:
    root = tmp_path / "src"
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    return [v.imported for v in _violations(root, path)]


def test_the_checker_tells_allowed_from_forbidden_imports(tmp_path: Path) -> None:
    # The tmp tree is not a source root, so _is_module() is False for everything there:
    # private sibling modules are recognised by the module rule alone.
    relative = "orrery/kernel/bus/nats/_feeds.py"
    assert _check(tmp_path, relative, "from ._wire import decode_event\n") == []
    assert _check(tmp_path, relative, "from orrery.sdk.wire import Event\n") == []
    assert _check(tmp_path, relative, "from orrery.sdk._event import Event\n") == [
        "orrery.sdk._event"
    ]
    assert _check(tmp_path, relative, "import orrery.sdk._ids\n") == ["orrery.sdk._ids"]
    assert _check(tmp_path, relative, "from ._wire import _decode\n") == [
        "orrery.kernel.bus.nats._wire._decode (an underscore name)"
    ]
    assert _check(tmp_path, relative, "from .._client import BusClient\n") == [
        "orrery.kernel.bus._client"
    ]
    assert _check(tmp_path, relative, "from orrery.kernel._kernel import Kernel\n") == [
        "orrery.kernel._kernel"
    ]
    assert _check(tmp_path, relative, "from __future__ import annotations\n") == []
    assert _check(tmp_path, "orrery/sdk/__init__.py", "from ._event import Event\n") == []
