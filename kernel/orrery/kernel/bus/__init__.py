"""The in-memory event bus: NATS-style topics, ordered bounded delivery, queue groups,
request/reply, retries and dead letters (DESIGN §4)."""

from ._client import BusClient
from ._memory import DEADLETTER_PREFIX, MemoryBus
from ._routes import Group, RouteTable
from ._subscription import MemorySubscription
from ._trie import SubjectTrie
from .errors import (
    BusClosed,
    BusError,
    DurableNotSupported,
    InvalidGroup,
    InvalidHeaders,
    InvalidTopic,
    NoResponders,
    RequestTimeout,
)

__all__ = [
    "DEADLETTER_PREFIX",
    "BusClient",
    "BusClosed",
    "BusError",
    "DurableNotSupported",
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
]
