"""The key-value store a plugin gets as ``ctx.store``, over any storage backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._codec import decode, encode, prefix_upper_bound, validate_name

if TYPE_CHECKING:
    from ._storage import Storage

__all__ = ["KeyValueStore"]

#: Rows fetched per round trip by `KeyValueStore.scan`.
SCAN_PAGE_SIZE = 500


class KeyValueStore:
    """Durable key-value store in one namespace (implements `orrery.sdk.Store`).

    Values are JSON-able data, encoded with msgspec JSON. Types msgspec encodes natively
    are stored as their JSON form and read back as plain JSON: tuples and sets as lists,
    datetimes and UUIDs as strings, bytes as base64 strings, int dict keys as strings,
    NaN and infinities as null, Structs and dataclasses as objects. Anything else raises
    `UnencodableValue` naming the key and the offending type.
    Keys are any text without NUL characters; `scan` returns them in code-point order.
    """

    __slots__ = ("_namespace", "_storage")

    def __init__(self, storage: Storage, namespace: str) -> None:
        self._storage = storage
        self._namespace = validate_name("namespace", namespace)

    def __repr__(self) -> str:
        return f"<KeyValueStore {self._namespace!r} on {self._storage!r}>"

    @property
    def namespace(self) -> str:
        """The namespace this store reads and writes (usually the plugin's name)."""
        return self._namespace

    async def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` when there is none."""
        raw = await self._storage._kv_get(self._namespace, validate_name("key", key))
        return default if raw is None else decode(raw)

    async def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        validate_name("key", key)
        raw = encode(value, f"store {self._namespace!r} key {key!r}")
        await self._storage._kv_put(self._namespace, key, raw)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether it existed."""
        return await self._storage._kv_delete(self._namespace, validate_name("key", key))

    async def scan(self, prefix: str = "") -> AsyncIterator[tuple[str, Any]]:
        """Iterate ``(key, value)`` pairs whose key starts with ``prefix``, in key order.

        Rows come in pages, each its own short read, so writing to the store while
        iterating is fine: a page shows the store as it is when that page is read.
        """
        validate_name("prefix", prefix)
        high = prefix_upper_bound(prefix)
        low, inclusive = prefix, True
        while True:
            page = await self._storage._kv_page(
                self._namespace, low, inclusive, high, SCAN_PAGE_SIZE
            )
            for key, raw in page:
                yield key, decode(raw)
            if len(page) < SCAN_PAGE_SIZE:
                return
            low, inclusive = page[-1][0], False
