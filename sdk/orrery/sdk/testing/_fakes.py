"""Small stand-ins for unit tests of plugin parts: a route request and a store.

Tests of a whole plugin use the real kernel (`orrery_kernel`); these are for testing
one route handler or one piece of machinery that takes a `Store` without a kernel.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
from orrery.sdk import StoreError

__all__ = ["FakeRequest", "MemoryStore"]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class FakeRequest:
    """An `orrery.sdk.HttpRequest` built by hand::

    request = FakeRequest("GET", "/tasks/7", params={"id": "7"}, query={"limit": "5"})
    assert await get_task(request) == {...}
    """

    def __init__(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        principal: str = "test",
    ) -> None:
        self._method = method.upper()
        self._path = path
        self._params = dict(params or {})
        self._query = {k: str(v) for k, v in (query or {}).items()}
        self._headers = dict(headers or {})
        self._json = json
        self._principal = principal

    @property
    def method(self) -> str:
        return self._method

    @property
    def path(self) -> str:
        return self._path

    @property
    def params(self) -> Mapping[str, str]:
        return self._params

    @property
    def query(self) -> Mapping[str, str]:
        return self._query

    @property
    def headers(self) -> Mapping[str, str]:
        return self._headers

    @property
    def principal(self) -> str:
        return self._principal

    async def json(self) -> Any:
        # A copy: a handler that mutates its body must not change the test's data.
        return copy.deepcopy(self._json)

    def __repr__(self) -> str:
        return f"FakeRequest({self._method!r}, {self._path!r})"


class MemoryStore:
    """An in-memory `orrery.sdk.Store` with the real store's semantics: values are
    stored as JSON (so you read back plain data, never the object you put), anything
    not JSON-able is refused, and `scan` is in key order."""

    def __init__(self, initial: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, bytes] = {}
        for key, value in (initial or {}).items():
            self._data[key] = self._encode(key, value)

    @staticmethod
    def _encode(key: str, value: Any) -> bytes:
        if not isinstance(key, str):
            raise StoreError(f"store keys are strings, got {key!r}")
        try:
            return _encode(value)
        except (TypeError, ValueError, OverflowError) as e:
            raise StoreError(
                f"cannot store key {key!r}: {type(value).__name__} is not JSON-able ({e}); "
                f"store plain data (dict, list, str, int, float, bool, None)"
            ) from e

    async def get(self, key: str, default: Any = None) -> Any:
        raw = self._data.get(key)
        return default if raw is None else _decode(raw)

    async def put(self, key: str, value: Any) -> None:
        self._data[key] = self._encode(key, value)

    async def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    async def scan(self, prefix: str = "") -> AsyncIterator[tuple[str, Any]]:
        # A snapshot of the keys, so writing while iterating is fine (as in the real one).
        for key in sorted(k for k in self._data if k.startswith(prefix)):
            raw = self._data.get(key)
            if raw is not None:
                yield key, _decode(raw)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._data)} keys>"
