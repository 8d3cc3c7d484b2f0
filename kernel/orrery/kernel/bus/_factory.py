"""Choosing the bus backend from configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._memory import MemoryBus

if TYPE_CHECKING:
    from orrery.kernel._config import BusConfig
    from orrery.kernel.storage import Storage

__all__ = ["create_bus"]


def create_bus(config: BusConfig, node_id: str, storage: Storage | None = None) -> MemoryBus:
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
