"""Queue-group and durable names of a plugin: its own, unless it joins another's.

A plugin's ``group="workers"`` is ``<plugin>/workers`` on the bus (``durable=`` alike), so
another plugin reusing the name neither shares nor steals its deliveries. Joining another
plugin's group or durable subscription is explicit, ``group="other:workers"``, and needs
the permission ``bus.group:other/workers`` (``bus.durable:other/billing`` for a durable
name; ``bus.group:other/*`` grants every group of that plugin).
"""

from __future__ import annotations

from collections.abc import Iterable

from orrery.sdk.errors import PermissionDenied

from .errors import InvalidDurable, InvalidGroup

__all__ = ["PluginNames"]


class PluginNames:
    """Maps the names one plugin uses to bus-wide names (no namespace: unchanged)."""

    __slots__ = ("_joins", "_namespace")

    def __init__(self, namespace: str | None, permissions: Iterable[str] = ()) -> None:
        self._namespace = namespace
        # (scope, "plugin/name") pairs this plugin may join; "plugin/*" for all.
        self._joins = frozenset(
            (scope, target)
            for scope, _, target in (p.partition(":") for p in permissions)
            if scope in ("bus.group", "bus.durable") and target
        )

    def scoped(self, kind: str, name: str, pattern: str) -> str:
        """The bus-wide name of group (``kind="group"``) or durable ``name`` (subscribed
        on ``pattern``).

        Raises `InvalidGroup` / `InvalidDurable` for a malformed name and
        `orrery.sdk.PermissionDenied` for another plugin's name without the permission.
        """
        namespace = self._namespace
        if namespace is None:
            return name
        owner, sep, local = name.rpartition(":")
        if "/" in name or (sep and (not owner or not local)):
            message = (
                f"use a plain name such as 'workers' (the plugin's own), or "
                f"'<plugin>:<name>' to join another plugin's {kind}; '/' is reserved"
            )
            if kind == "group":
                raise InvalidGroup(name, message)
            raise InvalidDurable(name, pattern, message)
        if not sep or owner == namespace:
            return f"{namespace}/{local}"
        wanted = f"{owner}/{local}"
        scope = f"bus.{kind}"
        if (scope, wanted) not in self._joins and (scope, f"{owner}/*") not in self._joins:
            raise PermissionDenied(namespace, scope, wanted)
        return wanted
