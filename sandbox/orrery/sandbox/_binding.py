"""What the kernel holds for a sandboxed plugin: bindings, remote services, wire rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from orrery.sdk import Event, Subscription

if TYPE_CHECKING:
    from ._bridge import Bridge

__all__ = ["Binding", "RemoteService", "event_to_wire", "journal_row"]


@dataclass(eq=False)
class Binding:
    """Something the plugin registered on the kernel, bound to the current worker's id."""

    signature: tuple[Any, ...]
    bound: asyncio.Event = field(default_factory=asyncio.Event)
    #: What the worker calls it: a subscription/route id, or the service key.
    worker_id: int | str | None = None
    kernel_sub: Subscription | None = None
    dropped: bool = False


class RemoteService:
    """What other plugins get from the kernel's registry for a sandboxed service.

    Every attribute is an async method that runs in the worker; arguments and results
    must be plain data.
    """

    def __init__(self, bridge: Bridge, key: str) -> None:
        self._bridge = bridge
        self._key = key

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._bridge.call_service(self._key, method, list(args), kwargs)

        call.__name__ = method
        return call

    def __repr__(self) -> str:
        return f"<sandboxed service {self._key!r} of plugin {self._bridge.name!r}>"


def event_to_wire(event: Event) -> list[Any]:
    return list(msgspec.structs.astuple(event))


def journal_row(event: Any) -> dict[str, Any]:
    return {
        "id": getattr(event, "id", ""), "stream": event.stream, "version": event.version,
        "position": event.position, "type": event.type, "data": event.data,
        "time_ns": event.time_ns,
    }
