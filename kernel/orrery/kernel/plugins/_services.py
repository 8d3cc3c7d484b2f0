"""The service registry shared by plugins, and each plugin's view of it.

A plugin reaches another plugin's service through a live handle (`ServiceHandle`), not
the object itself: every use looks the provider up again. When the provider is hot
reloaded, its dependents keep working with the new implementation without a restart.
"""

from __future__ import annotations

from typing import Any, TypeVar

from orrery.kernel.errors import PluginError
from orrery.sdk import ServiceKey, ServiceNotFound

__all__ = ["PluginServices", "ServiceHandle", "ServiceRegistry"]

T = TypeVar("T")


def key_name(key: ServiceKey[Any] | str) -> str:
    if isinstance(key, ServiceKey):
        return key.name
    if isinstance(key, str) and key:
        return key
    raise TypeError(f"a service key must be a ServiceKey or a non-empty string, got {key!r}")


class ServiceRegistry:
    """Kernel-wide map of service name -> (providing plugin, implementation)."""

    def __init__(self) -> None:
        #: name -> (providing plugin, implementation, the `PluginServices` that set it)
        self._entries: dict[str, tuple[str, Any, object | None]] = {}

    def check(self, owner: str, key: ServiceKey[Any] | str, impl: Any) -> str:
        """Raise unless ``owner`` may provide ``impl`` under ``key``; returns the name."""
        name = key_name(key)
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
        return name

    def set(self, owner: str, name: str, impl: Any, provider: object | None = None) -> None:
        self._entries[name] = (owner, impl, provider)

    def withdraw(self, name: str, provider: object) -> bool:
        """Remove ``name`` if ``provider`` set it last: a newer version's registration
        stays, even when it hands over the very same object."""
        current = self._entries.get(name)
        if current is not None and current[2] is provider:
            del self._entries[name]
            return True
        return False

    def get(self, key: ServiceKey[Any] | str) -> Any:
        """The current implementation; raises `ServiceNotFound`."""
        name = key_name(key)
        try:
            return self._entries[name][1]
        except KeyError:
            raise ServiceNotFound(name) from None

    def provider(self, key: ServiceKey[Any] | str) -> str | None:
        """Which plugin provides ``key``, if any."""
        entry = self._entries.get(key_name(key))
        return entry[0] if entry else None

    def names(self) -> dict[str, str]:
        """Service name -> providing plugin."""
        return {name: who for name, (who, _, _) in self._entries.items()}


class ServiceHandle:
    """A live reference to a service: attribute access and calls reach whichever
    implementation is registered now, and raise `ServiceNotFound` while none is."""

    __slots__ = ("_name", "_registry")

    def __init__(self, registry: ServiceRegistry, name: str) -> None:
        object.__setattr__(self, "_registry", registry)
        object.__setattr__(self, "_name", name)

    def _target(self) -> Any:
        return self._registry.get(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._target(), attr, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # so isinstance() sees the implementation's type
        return type(self._target())

    def __repr__(self) -> str:
        try:
            target = repr(self._target())
        except ServiceNotFound:
            target = "nothing (provider not running)"
        return f"<service {self._name!r} -> {target}>"


class PluginServices:
    """``ctx.services`` of one plugin instance.

    Withdraws, at release, exactly what this instance provided. A staged instance (the
    new version during a hot swap) records what it provides and registers it only when
    `activate` is called, so the old version serves until the moment of the swap.
    """

    __slots__ = ("_owner", "_provided", "_registry", "_staged")

    def __init__(self, registry: ServiceRegistry, owner: str, *, staged: bool = False) -> None:
        self._registry = registry
        self._owner = owner
        self._staged = staged
        self._provided: dict[str, Any] = {}

    def provide(self, key: ServiceKey[T] | str, impl: T) -> None:
        name = self._registry.check(self._owner, key, impl)
        self._provided[name] = impl
        if not self._staged:
            self._registry.set(self._owner, name, impl, self)

    def get(self, key: ServiceKey[Any] | str) -> Any:
        name = key_name(key)
        if name in self._provided:
            return self._provided[name]
        self._registry.get(name)  # raise ServiceNotFound now rather than at first use
        return ServiceHandle(self._registry, name)

    def activate(self) -> None:
        for name, impl in self._provided.items():
            self._registry.set(self._owner, name, impl, self)
        self._staged = False

    def release(self) -> list[str]:
        gone = [n for n in self._provided if self._registry.withdraw(n, self)]
        self._provided.clear()
        return gone
