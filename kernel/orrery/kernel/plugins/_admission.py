"""Deciding, before any of its code runs, whether a plugin may be imported in the kernel.

A plugin that declares ``sandbox = True``, or that the operator forces into the sandbox
(``[plugins.<name>] sandbox = true``, whatever file it lives in), is never imported in
the kernel process. The kernel reads the plugin's class from source; when the reading
cannot be trusted (a computed ``name`` or ``sandbox``, a class built by a decorator or a
metaclass, no class it can recognise) and the plugin might be sandboxed, it is not
imported at all: it is failed with the reason and what to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orrery.sandbox import PluginDeclaration

__all__ = ["NO_FORCING", "Admission", "SandboxPolicy", "admit"]

_MENTIONS_SANDBOX = re.compile(r"\bsandbox\b")
_LITERALS = "name, version, requires, optional, permissions and sandbox"


def _never(name: str) -> bool:
    return False


@dataclass(frozen=True)
class SandboxPolicy:
    """What configuration says about the sandbox: ``forced(name)``, and which plugin
    names it forces (so a plugin whose name cannot be read may be one of them)."""

    forced: Callable[[str], bool] = _never
    names: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, name: str) -> bool:
        return self.forced(name)


NO_FORCING = SandboxPolicy()


@dataclass(frozen=True)
class Admission:
    """The decision: a declaration to run sandboxed, in process, or an error."""

    declaration: Any = None  # orrery.sandbox.PluginDeclaration when it could be read
    sandboxed: bool = False
    error: str | None = None


def _mentions_sandbox(sources: Iterable[Path]) -> bool:
    for source in sources:
        try:
            if _MENTIONS_SANDBOX.search(source.read_text(encoding="utf-8", errors="replace")):
                return True
        except OSError:
            return True  # unreadable: assume the worst
    return False


def folder_sources(path: Path) -> list[Path]:
    """The Python files of a folder plugin (one file, or every module of a package)."""
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def admit(
    target: Any,
    default: str,
    policy: SandboxPolicy,
    *,
    sources: Iterable[Path] = (),
    describe: Callable[[BaseException], str] = str,
) -> Admission:
    """Read the plugin's declaration from source and decide where it may run.

    ``default`` is the plugin's name unless its class sets one; ``sources`` are the files
    searched for a mention of ``sandbox`` when the class cannot be read.
    """
    from orrery.sandbox import read_declaration

    why = ""
    decl: PluginDeclaration | None
    try:
        decl = read_declaration(target, strict=False)
    except (ValueError, SyntaxError, OSError, ImportError) as e:
        decl, why = None, describe(e)
    computed: tuple[str, ...] = ()
    if decl is not None:
        computed = decl.computed
        if decl.opaque:
            why = decl.opaque
        elif computed:
            why = (
                f"{', '.join(computed)} {'is' if len(computed) == 1 else 'are'} not a literal value"
            )
    plain = decl is not None and not decl.opaque
    name_known = plain and "name" not in computed
    sandbox_known = plain and "sandbox" not in computed
    name = (decl.name or default) if decl is not None and name_known else default
    wants = decl is not None and sandbox_known and decl.sandbox
    forced = policy(name)
    if not why:
        return Admission(decl, bool(wants or forced))
    fix = f"write {_LITERALS} as literal values on a class deriving from orrery.sdk.Plugin"
    if forced:
        error = (
            f"[plugins.{name}] sandbox forces this plugin into the sandbox, but its declaration "
            f"cannot be read without running it ({why}), so it is not loaded; {fix}"
        )
    elif wants:
        error = (
            f"it declares sandbox = True, but its declaration cannot be read without running "
            f"it ({why}), so it is not loaded; {fix}"
        )
    elif not name_known and policy.names:
        forcing = ", ".join(f"[plugins.{n}]" for n in sorted(policy.names))
        error = (
            f"its plugin name cannot be read without running it ({why}) and the configuration "
            f"forces plugins into the sandbox ({forcing}): it may be one of them, so it is not "
            f'loaded; give it a literal name = "..." ({fix})'
        )
    elif not sandbox_known and _mentions_sandbox(sources):
        error = (
            f"its declaration cannot be read without running it ({why}) and it may set "
            f"sandbox, so the kernel does not import it; {fix}"
        )
    else:
        return Admission(None, False)  # plainly in-process: imported as usual
    return Admission(None, False, error)
