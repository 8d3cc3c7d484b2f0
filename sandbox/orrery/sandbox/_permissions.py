"""Plugin permission declarations: parsing and checks.

Kept import-light on purpose: the kernel calls `parse_permissions` to validate the
declarations of in-process plugins too.
"""

from __future__ import annotations

import os.path
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from orrery.sdk import subject_matches, validate_pattern

from ._forward import NEVER_FORWARDED

__all__ = ["SCOPES", "Permissions", "parse_permissions", "pattern_covers"]

#: Scope -> what its argument is (``None``: the scope takes no argument).
SCOPES: dict[str, str | None] = {
    "bus.publish": "topic pattern",
    "bus.subscribe": "topic pattern",
    "bus.request": "topic pattern",
    # Joining another plugin's queue group / durable subscription: "<plugin>/<name>"
    # (or "<plugin>/*"); a plugin's own names need no permission (see docs).
    "bus.group": "plugin/group",
    "bus.durable": "plugin/durable",
    "services.provide": "service key",
    "services.get": "service key",
    "store": None,
    "journal": None,
    "http.route": None,
    "http.header": "header name",
    "net": None,
    "net.unix": "absolute path",
    "net.vsock": None,
    "fs.read": "absolute path",
    "fs.write": "absolute path",
}
_TOPIC_SCOPES = frozenset({"bus.publish", "bus.subscribe", "bus.request"})
_PATH_SCOPES = frozenset({"fs.read", "fs.write", "net.unix"})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _valid_scopes() -> str:
    return ", ".join(f"{s}:<{arg}>" if arg else s for s, arg in SCOPES.items())


def pattern_covers(granted: str, wanted: str) -> bool:
    """Whether every topic matched by pattern ``wanted`` is matched by ``granted``."""
    g = granted.split(".")
    w = wanted.split(".")
    for i, token in enumerate(g):
        if token == ">":
            return len(w) > i
        if i >= len(w):
            return False
        if token == "*":
            if w[i] == ">":
                return False
        elif token != w[i]:
            return False
    return len(g) == len(w)


@dataclass(frozen=True)
class Permissions:
    """What a plugin may do, parsed from its ``permissions`` declaration.

    ``grants`` maps a scope to the arguments granted for it (empty tuple for scopes
    without an argument that are granted).
    """

    grants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    declared: tuple[str, ...] = ()

    def allows(self, action: str, resource: str = "") -> bool:
        """Whether ``action`` (a scope such as ``bus.publish``) on ``resource`` is allowed.

        For ``bus.subscribe`` the resource is a pattern and must be covered by a granted
        pattern; for the other bus scopes it is a concrete topic. ``fs.*`` resources are
        paths that must lie under a granted path. Service keys match exactly or ``*``.
        """
        granted = self.grants.get(action)
        if granted is None:
            return False
        if SCOPES.get(action) is None:
            return True
        if action == "bus.subscribe":
            return any(pattern_covers(g, resource) for g in granted)
        if action in _TOPIC_SCOPES:
            return any(subject_matches(g, resource) for g in granted)
        if action in _PATH_SCOPES:
            path = os.path.normpath(resource)
            return any(path == g or path.startswith(g.rstrip("/") + "/") for g in granted)
        return "*" in granted or resource in granted

    def paths(self, scope: str) -> tuple[str, ...]:
        """The granted paths of ``fs.read``, ``fs.write`` or ``net.unix``."""
        return self.grants.get(scope, ())

    @property
    def net(self) -> bool:
        """Whether the plugin may use the network."""
        return "net" in self.grants


def parse_permissions(perms: Sequence[str]) -> Permissions:
    """Parse declarations such as ``"bus.publish:orders.>"`` into `Permissions`.

    Raises `ValueError` naming the bad entry and listing the valid scopes.
    """
    if isinstance(perms, str):
        raise ValueError(
            f"permissions must be a list of strings, not the string {perms!r}; "
            f"write permissions = [{perms!r}]"
        )
    grants: dict[str, list[str]] = {}
    for entry in perms:
        if not isinstance(entry, str):
            raise ValueError(
                f"permission {entry!r} is not a string; valid scopes: {_valid_scopes()}"
            )
        scope, sep, arg = entry.strip().partition(":")
        if scope not in SCOPES:
            raise ValueError(
                f"permission {entry!r} has unknown scope {scope!r}; valid scopes: "
                f"{_valid_scopes()}"
            )
        kind = SCOPES[scope]
        if kind is None:
            if sep:
                raise ValueError(
                    f"permission {entry!r}: scope {scope!r} takes no argument; write "
                    f"{scope!r}. Valid scopes: {_valid_scopes()}"
                )
            grants.setdefault(scope, [])
            continue
        if not arg:
            raise ValueError(
                f"permission {entry!r}: scope {scope!r} needs a {kind}, e.g. "
                f"'{scope}:{'orders.>' if scope in _TOPIC_SCOPES else '/srv/data'}'. "
                f"Valid scopes: {_valid_scopes()}"
            )
        if scope == "http.header":
            if not _HEADER_NAME.fullmatch(arg):
                raise ValueError(
                    f"permission {entry!r}: {arg!r} is not an HTTP header name; write e.g. "
                    f"'http.header:X-Tenant'"
                )
            if arg.lower() in NEVER_FORWARDED:
                raise ValueError(
                    f"permission {entry!r}: {arg} carries credentials and is never forwarded "
                    f"to a sandboxed plugin; remove the permission (the daemon has already "
                    f"authenticated the request: use request.principal)"
                )
        if scope in _TOPIC_SCOPES:
            try:
                validate_pattern(arg)
            except ValueError as e:
                raise ValueError(f"permission {entry!r}: {e}") from e
        elif scope in ("bus.group", "bus.durable"):
            owner, slash, name = arg.partition("/")
            if not owner or not slash or not name or "/" in name:
                raise ValueError(
                    f"permission {entry!r}: name the other plugin's {scope[4:]} as "
                    f"'<plugin>/<name>', e.g. '{scope}:billing/workers'"
                )
        elif scope in _PATH_SCOPES:
            if not os.path.isabs(arg):
                raise ValueError(
                    f"permission {entry!r}: the path must be absolute, e.g. '{scope}:/srv/data'"
                )
            arg = os.path.normpath(arg)
        grants.setdefault(scope, []).append(arg)
    return Permissions(
        grants={k: tuple(v) for k, v in grants.items()},
        declared=tuple(p for p in perms),
    )
