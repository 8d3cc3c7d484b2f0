"""Choosing the bus backend from configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._memory import MemoryBus

if TYPE_CHECKING:
    from orrery.kernel.storage import Storage

__all__ = ["BusSettings", "create_bus"]


class BusSettings(Protocol):
    """The ``[bus]`` configuration section, as `create_bus` reads it (read-only)."""

    @property
    def backend(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def queue_size(self) -> int: ...

    @property
    def max_attempts(self) -> int: ...

    @property
    def retry_backoff(self) -> float: ...

    @property
    def handler_timeout(self) -> float: ...

    @property
    def max_subscriptions_per_plugin(self) -> int: ...

    @property
    def prefix(self) -> str: ...

    @property
    def stream(self) -> str | None: ...

    @property
    def ack_wait(self) -> float: ...

    @property
    def connect_timeout(self) -> float: ...


def create_bus(config: BusSettings, node_id: str, storage: Storage | None = None) -> MemoryBus:
    """A bus (not yet started) for ``config``: a `MemoryBus` whose durable subscriptions
    live in ``storage``'s journal, or a `NatsBus` (``backend = "nats"``).

    Starting a NATS bus raises `BusUnavailable` naming the server and what to check.
    """
    options: dict[str, Any] = {
        "queue_size": config.queue_size,
        "max_attempts": config.max_attempts,
        "retry_backoff": config.retry_backoff,
        "handler_timeout": config.handler_timeout or None,
        "max_subscriptions": config.max_subscriptions_per_plugin,
    }
    if config.backend == "nats":
        # Imported here: nats-py is only needed by kernels that use it.
        from .nats import NatsBus

        return NatsBus(
            node_id,
            url=config.url,
            prefix=config.prefix,
            stream=config.stream,
            ack_wait=config.ack_wait,
            connect_timeout=config.connect_timeout,
            **options,
        )
    return MemoryBus(node_id, storage=storage, **options)
