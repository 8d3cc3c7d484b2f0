"""The service registry shared by plugins, with per-plugin views that release on stop."""

from __future__ import annotations

from typing import Any, TypeVar

from orrery.sdk import ServiceKey, ServiceNotFound

from ..errors import PluginError

__all__ = ["PluginServices", "ServiceRegistry"]

T = TypeVar("T")


def _key_name(key: ServiceKey[Any] | str) -> str:
    if isinstance(key, ServiceKey):
        return key.name
    if isinstance(key, str) and key:
        return key
    raise TypeError(f"a service key must be a ServiceKey or a non-empty string, got {key!r}")


class ServiceRegistry:
    """Kernel-wide map of service name -> (providing plugin, implementation)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, Any]] = {}

    def provide(self, owner: str, key: ServiceKey[T] | str, impl: T) -> None:
        name = _key_name(key)
        current = self._entries.get(name)
        if current is not None and current[0] != owner:
            raise PluginError(
                f"plugin {owner!r} cannot provide service {name!r}: plugin {current[0]!r} "
                f"already provides it; use a different key or disable one of them",
                plugin=owner,
            )
        if isinstance(key, ServiceKey) and key.type is not None and not isinstance(impl, key.type):
            raise TypeError(
                f"service {name!r} must be a {key.type.__qualname__}, got {type(impl).__qualname__}"
            )
        self._entries[name] = (owner, impl)

    def get(self, key: ServiceKey[Any] | str) -> Any:
        name = _key_name(key)
        try:
            return self._entries[name][1]
        except KeyError:
            raise ServiceNotFound(name) from None

    def provider(self, key: ServiceKey[Any] | str) -> str | None:
        """Which plugin provides ``key``, if any."""
        entry = self._entries.get(_key_name(key))
        return entry[0] if entry else None

    def withdraw_all(self, owner: str) -> list[str]:
        """Remove every service ``owner`` provides; returns their names."""
        gone = [name for name, (who, _) in self._entries.items() if who == owner]
        for name in gone:
            del self._entries[name]
        return gone

    def names(self) -> dict[str, str]:
        """Service name -> providing plugin."""
        return {name: who for name, (who, _) in self._entries.items()}


class PluginServices:
    """``ctx.services`` of one plugin: provides under its name, reads everything."""

    __slots__ = ("_owner", "_registry")

    def __init__(self, registry: ServiceRegistry, owner: str) -> None:
        self._registry = registry
        self._owner = owner

    def provide(self, key: ServiceKey[T] | str, impl: T) -> None:
        self._registry.provide(self._owner, key, impl)

    def get(self, key: ServiceKey[Any] | str) -> Any:
        return self._registry.get(key)

    def release(self) -> list[str]:
        return self._registry.withdraw_all(self._owner)
