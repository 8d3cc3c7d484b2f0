"""`BusClient`: the `orrery.sdk.Bus` a plugin (or the kernel) holds.

It stamps its ``source`` on what it publishes and remembers what it subscribed and which
requests it is waiting on, so `close` can release all of it when the plugin stops.

A plugin's client has a ``namespace`` (the plugin's name): its queue-group and durable
names are its own (see `PluginNames`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from orrery.sdk import Bus, Event, Handler, validate_pattern
from orrery.sdk.errors import NoResponders, RequestTimeout
from orrery.sdk.wire import validate_headers

from ._causation import current_event, lineage
from ._host import ClientHost
from ._jsonable import PLAIN as _PLAIN
from ._jsonable import check_data, refusal
from ._jsonable import encode as _encode
from ._names import PluginNames
from ._subscription import MemorySubscription
from ._target import Waiter
from .errors import (
    BusClosed,
    InvalidData,
    InvalidGroup,
    InvalidHeaders,
    TooManySubscriptions,
)

__all__ = ["BusClient"]

_time_ns = time.time_ns
_current_get = current_event.get
_current_set = current_event.set
_current_reset = current_event.reset


class BusClient:
    """A view of a `MemoryBus` that publishes as one source (implements `orrery.sdk.Bus`).

    `close` unsubscribes everything subscribed through it and cancels its pending
    requests; the kernel calls it when the owning plugin stops, even if the plugin forgot.
    """

    __slots__ = (
        "_blocked",
        "_bus",
        "_closed",
        "_held",
        "_limit",
        "_lookup",
        "_names",
        "_next_id",
        "_remote",
        "_requests",
        "_source",
        "_staged",
        "_subs",
    )

    def __init__(
        self,
        bus: ClientHost,
        source: str,
        *,
        staged: bool = False,
        namespace: str | None = None,
        permissions: Iterable[str] = (),
        max_subscriptions: int | None = None,
    ) -> None:
        self._bus = bus
        self._source = source
        self._closed = False
        # Staged: subscriptions are made but not routed until `take_over` (hot swap).
        self._staged = staged
        self._held = False
        # One flag for the hot path: closed, or the bus is not accepting publishes.
        self._blocked = not bus.accepting
        # The route cache dict itself (never rebound by the bus), read without a call.
        self._lookup = bus.route_cache.get
        self._next_id = bus.next_id
        # How a networked bus sends each event to other nodes (None: in-process only).
        self._remote = bus.remote
        self._subs: dict[MemorySubscription, None] = {}
        self._requests: set[asyncio.Future[Any]] = set()
        self._names = PluginNames(namespace, permissions)
        self._limit = max_subscriptions

    @property
    def bus(self) -> ClientHost:
        """The bus this client publishes on."""
        return self._bus

    @property
    def source(self) -> str:
        """The CloudEvents ``source`` stamped on every event this client publishes."""
        return self._source

    @property
    def closed(self) -> bool:
        """Whether `close` was called."""
        return self._closed

    @property
    def subscriptions(self) -> tuple[MemorySubscription, ...]:
        """The active subscriptions made through this client, oldest first."""
        return tuple(self._subs)

    async def publish(
        self,
        topic: str,
        data: Any = None,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Event:
        """Publish ``data`` on ``topic``; returns the Event that was sent.

        Returns once every matching subscriber has the event (handled, for an idle sync
        handler; queued, otherwise). Waits while a matching subscriber's queue is full.
        Raises `orrery.sdk.InvalidTopic`, `InvalidHeaders`, `InvalidData` (``data``
        cannot be encoded as JSON) or `BusClosed`.
        """
        # The hot path: keep it free of calls and allocations beyond the Event itself.
        if self._blocked:
            raise self._refusal("publish")
        route = self._lookup(topic)
        if route is None:
            route = self._bus.route(topic)
        remote = self._remote
        if remote is None and data.__class__ not in _PLAIN:
            # The JSON check, inline (one encode). A networked bus encodes every event
            # anyway: it refuses there, once.
            try:
                _encode(data)
            except Exception as e:
                raise refusal(topic, data) or InvalidData(topic, type(data), "data", data) from e
        if headers is not None:
            headers = _checked_headers(headers)
        now = _time_ns()
        parent = _current_get()
        if parent is None:
            if key is None and headers is None:
                # Fewer keyword arguments make a measurably cheaper Struct construction.
                event = Event(
                    id=self._next_id(now), type=topic, source=self._source, time_ns=now, data=data
                )
            else:
                event = Event(
                    id=self._next_id(now),
                    type=topic,
                    source=self._source,
                    time_ns=now,
                    subject=key,
                    data=data,
                    headers=headers,
                )
        else:
            event = Event(
                id=self._next_id(now),
                type=topic,
                source=self._source,
                time_ns=now,
                subject=key,
                data=data,
                headers=headers,
                correlationid=parent.correlationid or parent.id,
                causationid=parent.id,
            )
        if remote is not None:
            # Other nodes first: the local handlers below then run without a yield
            # between them and the return, exactly as on the memory bus.
            try:
                sending = remote(event)
                if sending is not None:
                    await sending
            except (TypeError, ValueError) as e:
                found = refusal(topic, data)
                if found is None:
                    raise
                raise found from e
        route.count += 1
        token = None
        waits: list[Waiter] | None = None
        try:
            for target in route.targets:
                if target.inline:
                    # Idle sync handler: nothing is ahead of this event, call it right here.
                    if token is None:
                        token = _current_set(event)
                    try:
                        result = target.handler(event)
                    except Exception as exc:
                        target.failed_inline(event, exc)
                    else:
                        if result is not None:
                            target.returned(event, result)
                else:
                    full = target.offer(event)
                    if full is not None:
                        if waits is None:
                            waits = [full]
                        else:
                            waits.append(full)
        finally:
            if token is not None:
                _current_reset(token)
        if waits is not None:
            for sub in waits:
                await sub.put_waiting(event)
        return event

    def subscribe(
        self,
        pattern: str,
        handler: Handler,
        *,
        group: str | None = None,
        durable: str | None = None,
        timeout: float | None = None,
    ) -> MemorySubscription:
        """Deliver events matching ``pattern`` to ``handler`` (sync or async), in order.

        With ``group``, subscriptions sharing the same pattern and group compete: each
        event goes to one of them. A non-None return value answers a `request`.
        With ``durable``, events matching ``pattern`` are kept (in the journal, or in
        JetStream on the nats backend) until the handler returns without raising, and
        delivered again after a crash or restart: at-least-once. Subscriptions sharing a
        durable name share its position and compete for its events.
        A plugin's group and durable names are its own (see the module docstring).
        ``timeout`` overrides ``[bus] handler_timeout`` for this subscription.
        Raises `orrery.sdk.InvalidTopic`, `InvalidGroup`, `DurableNotSupported`,
        `InvalidDurable`, `orrery.sdk.PermissionDenied` (another plugin's name without
        the permission), `TooManySubscriptions`, `BusClosed`, or `TypeError` for a
        handler that is not callable.
        """
        if self._closed or self._bus.state == "stopped":
            raise self._refusal("subscribe")
        validate_pattern(pattern)
        if not callable(handler):
            raise TypeError(f"handler for {pattern!r} must be callable, got {handler!r}")
        if group is not None:
            if not isinstance(group, str) or not group or any(c.isspace() for c in group):
                raise InvalidGroup(group)
            group = self._names.scoped("group", group, pattern)
        if durable is not None and isinstance(durable, str):
            durable = self._names.scoped("durable", durable, pattern)
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if self._limit is not None and len(self._subs) >= self._limit:
            raise TooManySubscriptions(self._source, self._limit, pattern)
        bus = self._bus
        sub = MemorySubscription(
            bus,
            self._source,
            pattern,
            handler,
            group=group,
            seq=bus.next_seq(),
            held=self._held,
            release=self._released,
            feed=None if durable is None else bus.durable_feed(durable, pattern),
            timeout=timeout,
        )
        self._subs[sub] = None
        if not self._staged:
            bus.attach(sub)
        return sub

    async def request(
        self,
        topic: str,
        data: Any = None,
        *,
        timeout: float = 5.0,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Publish ``data`` on ``topic`` and return the first reply: the first non-None
        value a matching handler returns (or data published on the event's ``replyto``).
        ``headers`` travel on the request event (e.g. ``orrery-idempotency-key``).

        Raises `orrery.sdk.NoResponders` at once if nothing subscribes to ``topic``,
        `orrery.sdk.RequestTimeout` if no reply arrives within ``timeout`` seconds.
        """
        if self._blocked:
            raise self._refusal("request")
        bus = self._bus
        route = bus.route(topic)
        targets = route.targets
        remote = self._remote
        check_data(topic, data)  # also on a networked bus: local responders go first
        if not targets and remote is None:
            raise NoResponders(topic)
        inbox, reply = bus.open_inbox(None if targets else topic)
        self._requests.add(reply)
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                now = _time_ns()
                parent = _current_get()
                correlationid, causationid = (None, None) if parent is None else lineage(parent)
                event = Event(
                    id=self._next_id(now),
                    type=topic,
                    source=self._source,
                    time_ns=now,
                    data=data,
                    headers=None if headers is None else _checked_headers(headers),
                    correlationid=correlationid,
                    causationid=causationid,
                    replyto=inbox,
                )
                route.count += 1
                await bus.send(event, targets)
                if remote is not None:
                    # Responders on other nodes (and queue groups) are reached over the
                    # network; with none anywhere the server answers "no responders".
                    sending = remote(event)
                    if sending is not None:
                        await sending
                return await reply
        except TimeoutError as e:
            if deadline.expired():
                raise RequestTimeout(topic, timeout) from e
            raise
        finally:
            bus.close_inbox(inbox)
            self._requests.discard(reply)

    @property
    def staged(self) -> bool:
        """Whether subscriptions wait for `take_over` before they receive anything."""
        return self._staged

    @property
    def held(self) -> bool:
        """Whether delivery to this client's subscriptions is paused by `hold`."""
        return self._held

    async def hold(self) -> None:
        """Pause delivery to every subscription of this client (hot swap, step one).

        Events keep queueing (publishers wait when a queue is full); handlers already
        running are awaited, so the plugin is quiet when this returns. Undo with `resume`.
        """
        self._held = True
        running = [parked for sub in self._subs if (parked := sub.hold()) is not None]
        if running:
            await asyncio.gather(*running)

    def resume(self) -> None:
        """Undo `hold`: deliver what queued up meanwhile, then carry on as before."""
        self._held = False
        for sub in self._subs:
            sub.resume()

    def take_over(self, old: Bus) -> int:
        """Replace ``old`` (a held client of the same bus) in one step; returns the number
        of queued events handed over.

        Each subscription of this client inherits the queue of the first unmatched
        subscription of ``old`` with the same pattern and group; every subscription of
        ``old`` stops being routed, and this client's (if staged) start. ``old`` keeps
        its subscriptions until it is closed, but they receive nothing more.
        """
        if not isinstance(old, BusClient) or old._bus is not self._bus:
            raise TypeError(f"take_over needs a BusClient of the same bus, got {old!r}")
        if old is self:
            raise ValueError(f"{self!r} cannot take over from itself")
        bus = self._bus
        spare: dict[tuple[str, str | None], list[MemorySubscription]] = {}
        for sub in old._subs:
            spare.setdefault((sub.pattern, sub.group), []).append(sub)
            bus.detach(sub)
        moved = 0
        for sub in self._subs:
            candidates = spare.get((sub.pattern, sub.group))
            if candidates:
                moved += sub.inherit(candidates.pop(0))
            if self._staged:
                bus.attach(sub)
        self._staged = False
        return moved

    def close(self) -> None:
        """Unsubscribe everything subscribed through this client and cancel its pending
        requests. Idempotent; the client refuses to publish or subscribe afterwards."""
        self._closed = True
        self._blocked = True
        for sub in list(self._subs):
            sub.unsubscribe()
        for reply in list(self._requests):
            reply.cancel()
        self._requests.clear()
        self._bus.forget_client(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._subs)} subscription(s)"
        return f"<BusClient {self._source!r} {state}>"

    def _released(self, sub: MemorySubscription) -> None:
        """``sub`` unsubscribed or started draining: stop routing it; forget it once gone."""
        self._bus.detach(sub)
        if not sub.active:
            self._subs.pop(sub, None)

    def refresh(self) -> None:
        """The bus changed state: recompute whether publishing is refused."""
        self._blocked = self._closed or not self._bus.accepting

    def _refusal(self, operation: str) -> BusClosed:
        state = self._bus.state
        if self._closed:
            reason = "the client is closed (its plugin stopped); use a live client"
        elif state == "new":
            reason = "the bus is not started yet; await bus.start() first"
        elif state == "stopped":
            reason = "the bus is stopped; nothing can be published on it any more"
        else:  # pragma: no cover - an open client on an accepting bus is never refused
            reason = f"the bus is {state}"
        return BusClosed(self, operation, reason)


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """A validated copy of ``headers`` (None when empty); raises `InvalidHeaders`."""
    try:
        copy = dict(headers)
    except (TypeError, ValueError) as e:
        raise InvalidHeaders(headers, "expected a mapping of header names to strings") from e
    try:
        validate_headers(copy)
    except ValueError as e:
        raise InvalidHeaders(headers, str(e)) from e
    return copy or None
