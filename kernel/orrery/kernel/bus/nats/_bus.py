"""`NatsBus`: the local bus with `NatsTransport` between nodes (see `_transport.py`)."""

from __future__ import annotations

from typing import Any

from orrery.kernel.bus import MemoryBus

from ._transport import NatsTransport

__all__ = ["NatsBus"]


class NatsBus(MemoryBus):
    """The event bus over NATS (core for fan-out and request/reply, JetStream for durable
    subscriptions); same API and local semantics as `MemoryBus`, of which it is one made
    with a `NatsTransport`.

    ``prefix`` is the first subject token of every event (``orrery.<topic>``): kernels
    with the same prefix on the same NATS share events. ``stream`` is the JetStream
    stream of durable subscriptions (default ``<PREFIX>_DURABLE``); ``ack_wait`` is how
    long an unacknowledged durable event stays with a node before another gets it.
    """

    def __init__(
        self,
        node_id: str,
        *,
        url: str = "nats://127.0.0.1:4222",
        prefix: str = "orrery",
        stream: str | None = None,
        ack_wait: float = 30.0,
        connect_timeout: float = 5.0,
        **options: Any,
    ) -> None:
        self.nats = NatsTransport(
            url=url,
            prefix=prefix,
            stream=stream,
            ack_wait=ack_wait,
            connect_timeout=connect_timeout,
        )
        super().__init__(node_id, transport=self.nats, **options)

    @property
    def url(self) -> str:
        return self.nats.url

    @property
    def prefix(self) -> str:
        return self.nats.prefix

    @property
    def stream(self) -> str:
        return self.nats.stream

    @property
    def ack_wait(self) -> float:
        return self.nats.ack_wait

    def __repr__(self) -> str:
        return (
            f"<NatsBus node={self.node_id!r} {self.state} url={self.url!r} "
            f"prefix={self.prefix!r} clients={len(self.clients)}>"
        )
