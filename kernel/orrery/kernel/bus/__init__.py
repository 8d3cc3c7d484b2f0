"""The event bus: NATS-style topics, ordered bounded delivery, queue groups,
request/reply, retries, dead letters and durable subscriptions (DESIGN §4).

`MemoryBus` runs in one process (durable subscriptions in the storage journal);
`orrery.kernel.bus.nats.NatsBus` adds NATS between nodes. `create_bus` picks one from
configuration."""

from ._client import BusClient
from ._durable import DurableFeed, DurableFeeds, FeedFactory
from ._factory import create_bus
from ._journal_feed import BUS_NAMESPACE, JournalFeed
from ._memory import DEADLETTER_PREFIX, MemoryBus
from ._routes import Group, RouteTable
from ._subscription import MemorySubscription
from ._target import Target, Waiter
from ._traffic import Route, Traffic, TrafficBook
from ._transport import BusPort, Transport
from ._trie import SubjectTrie
from .errors import (
    BusClosed,
    BusError,
    BusUnavailable,
    DurableNotSupported,
    HandlerTimeout,
    InvalidData,
    InvalidDurable,
    InvalidGroup,
    InvalidHeaders,
    InvalidTopic,
    NoResponders,
    RequestTimeout,
    TooManySubscriptions,
)

__all__ = [
    "BUS_NAMESPACE",
    "DEADLETTER_PREFIX",
    "BusClient",
    "BusClosed",
    "BusError",
    "BusPort",
    "BusUnavailable",
    "DurableFeed",
    "DurableFeeds",
    "DurableNotSupported",
    "FeedFactory",
    "Group",
    "HandlerTimeout",
    "InvalidData",
    "InvalidDurable",
    "JournalFeed",
    "InvalidGroup",
    "InvalidHeaders",
    "InvalidTopic",
    "MemoryBus",
    "MemorySubscription",
    "NoResponders",
    "RequestTimeout",
    "Route",
    "RouteTable",
    "SubjectTrie",
    "Target",
    "TooManySubscriptions",
    "Traffic",
    "TrafficBook",
    "Transport",
    "Waiter",
    "create_bus",
]
