"""The event bus: NATS-style topics, ordered bounded delivery, queue groups,
request/reply, retries, dead letters and durable subscriptions (DESIGN §4).

`MemoryBus` runs in one process (durable subscriptions in the storage journal);
`orrery.kernel.bus.nats.NatsBus` adds NATS between nodes. `create_bus` picks one from
configuration."""

from ._client import BusClient
from ._durable import DurableFeed, DurableSubscription
from ._factory import create_bus
from ._journal_feed import BUS_NAMESPACE, JournalFeed
from ._memory import DEADLETTER_PREFIX, MemoryBus
from ._routes import Group, RouteTable
from ._subscription import MemorySubscription
from ._trie import SubjectTrie
from .errors import (
    BusClosed,
    BusError,
    BusUnavailable,
    DurableNotSupported,
    InvalidDurable,
    InvalidGroup,
    InvalidHeaders,
    InvalidTopic,
    NoResponders,
    RequestTimeout,
)

__all__ = [
    "BUS_NAMESPACE",
    "DEADLETTER_PREFIX",
    "BusClient",
    "BusClosed",
    "BusError",
    "BusUnavailable",
    "DurableFeed",
    "DurableNotSupported",
    "DurableSubscription",
    "InvalidDurable",
    "JournalFeed",
    "Group",
    "InvalidGroup",
    "InvalidHeaders",
    "InvalidTopic",
    "MemoryBus",
    "MemorySubscription",
    "NoResponders",
    "RequestTimeout",
    "RouteTable",
    "SubjectTrie",
    "create_bus",
]
