"""Typed keys for the service registry shared between plugins."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = ["ServiceKey"]

T = TypeVar("T")


class ServiceKey(Generic[T]):
    """Names a service and the type its implementation has.

    Plugins that share a service import the same key (usually from the providing
    plugin's package) so that ``ctx.services.get(key)`` is typed::

        SCHEDULER = ServiceKey("scheduler", SchedulerService)
    """

    __slots__ = ("name", "type")

    def __init__(self, name: str, type: type[T] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a ServiceKey needs a non-empty string name")
        self.name = name
        self.type = type

    def __repr__(self) -> str:
        kind = f", {self.type.__qualname__}" if self.type is not None else ""
        return f"ServiceKey({self.name!r}{kind})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ServiceKey) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("ServiceKey", self.name))
