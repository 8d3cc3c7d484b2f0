"""The key-value store (orrery.sdk.Store) on both backends."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from orrery.kernel.storage import (  # noqa: TID251 - the ban is meant for orrery.sdk
    InvalidName,
    KeyValueStore,
    Storage,
    StoreError,
    UnencodableValue,
)
from orrery.sdk import Store


async def scan(store: KeyValueStore, prefix: str = "") -> list[tuple[str, Any]]:
    return [pair async for pair in store.scan(prefix)]


async def test_store_satisfies_sdk_protocol(storage: Storage) -> None:
    assert isinstance(storage.store("p"), Store)


async def test_put_get_delete(storage: Storage) -> None:
    store = storage.store("plugin")
    assert await store.get("missing") is None
    assert await store.get("missing", default=7) == 7
    value = {"name": "ada", "tags": ["a", "b"], "n": 3, "x": 1.5, "ok": True, "none": None}
    await store.put("k", value)
    assert await store.get("k") == value
    await store.put("k", [1, 2])
    assert await store.get("k") == [1, 2]
    assert await store.delete("k") is True
    assert await store.delete("k") is False
    assert await store.get("k", "gone") == "gone"


async def test_falsy_values_are_not_missing(storage: Storage) -> None:
    store = storage.store("plugin")
    falsy: list[Any] = [None, 0, "", [], {}, False]
    for value in falsy:
        await store.put("k", value)
        assert await store.get("k", default="absent") == value


async def test_strings_keep_nul_and_unicode(storage: Storage) -> None:
    store = storage.store("plugin")
    value = {"text": "nul\x00inside \u2603 \U0001f680", "big": 2**62}
    await store.put("k", value)
    assert await store.get("k") == value


async def test_namespaces_are_separate(storage: Storage) -> None:
    a, b = storage.store("a"), storage.store("b")
    await a.put("k", 1)
    await b.put("k", 2)
    assert (await a.get("k"), await b.get("k")) == (1, 2)
    assert await scan(a) == [("k", 1)]
    assert await a.delete("k")
    assert await b.get("k") == 2


async def test_values_survive_reopen(make_storage: Any) -> None:
    first = await make_storage()
    await first.store("p").put("k", {"v": 1})
    await first.close()
    second = await make_storage()
    assert await second.store("p").get("k") == {"v": 1}


@pytest.mark.parametrize(
    ("value", "type_name", "path"),
    [
        (object(), "object", ""),
        ({"a": [1, {"b": object()}]}, "object", "['a'][1]['b']"),
        ({1j: "x"}, "complex", "(a dict key)"),
        ([1, 2, 3j], "complex", "[2]"),
    ],
)
async def test_non_json_value_is_rejected_clearly(
    storage: Storage, value: Any, type_name: str, path: str
) -> None:
    store = storage.store("plugin")
    with pytest.raises(UnencodableValue) as info:
        await store.put("the-key", value)
    error = info.value
    assert isinstance(error, StoreError)
    assert "'the-key'" in str(error)
    assert type_name in str(error)
    assert path in error.path
    assert error.value is value
    assert await store.get("the-key") is None


async def test_msgspec_native_types_are_stored_as_json(storage: Storage) -> None:
    store = storage.store("plugin")
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    await store.put("k", {"when": when, "pair": (1, 2)})
    assert await store.get("k") == {"when": "2026-01-02T03:04:05Z", "pair": [1, 2]}


@pytest.mark.parametrize("key", ["nul\x00key", "lone\ud800surrogate", 7, None])
async def test_unstorable_keys_are_rejected(storage: Storage, key: Any) -> None:
    store = storage.store("plugin")
    with pytest.raises(InvalidName) as info:
        await store.put(key, 1)
    assert info.value.name == key
    with pytest.raises(InvalidName):
        await store.get(key)


async def test_scan_is_in_key_order_within_prefix(storage: Storage) -> None:
    store = storage.store("plugin")
    keys = ["b", "a/2", "a/10", "a/1", "a", "ab", "a/", "A", "a\U0010ffff", "\u00e9", "aa"]
    for i, key in enumerate(keys):
        await store.put(key, i)
    assert [k for k, _ in await scan(store)] == sorted(keys)
    assert [k for k, _ in await scan(store, "a/")] == ["a/", "a/1", "a/10", "a/2"]
    assert [k for k, _ in await scan(store, "a")] == sorted(k for k in keys if k[0] == "a")
    assert await scan(store, "zzz") == []
    assert await scan(store, "a/1") == [("a/1", keys.index("a/1")), ("a/10", 2)]


@pytest.mark.parametrize("prefix", ["%", "_", "a%", "a_", "\\", "a\\", "[a]", "*", "'"])
async def test_scan_prefix_has_no_wildcards(storage: Storage, prefix: str) -> None:
    store = storage.store("plugin")
    keys = ["a", "ab", "a_b", "a%b", "a\\b", "%", "_", "\\", "[a]", "*", "'q", "xyz", "a[a]"]
    for key in keys:
        await store.put(key, key)
    expected = sorted(k for k in keys if k.startswith(prefix))
    assert [k for k, _ in await scan(store, prefix)] == expected


async def test_scan_prefix_at_the_top_of_unicode(storage: Storage) -> None:
    store = storage.store("plugin")
    keys = ["\U0010ffff", "\U0010ffffa", "\U0010ffff\U0010ffff", "\ud7ff", "\ud7ffx", "\ue000"]
    for key in keys:
        await store.put(key, 0)
    for prefix in ("\U0010ffff", "\U0010ffff\U0010ffff", "\ud7ff", "\ue000"):
        expected = sorted(k for k in keys if k.startswith(prefix))
        assert [k for k, _ in await scan(store, prefix)] == expected


async def test_scan_pages_through_many_keys(storage: Storage) -> None:
    store = storage.store("plugin")
    keys = [f"k{i:05d}" for i in range(1234)]
    for key in keys:
        await store.put(key, key)
    await store.put("l", "outside")
    assert [k for k, _ in await scan(store, "k")] == keys


async def test_writing_while_scanning_is_allowed(storage: Storage) -> None:
    store = storage.store("plugin")
    for i in range(10):
        await store.put(f"k{i}", i)
    seen = []
    async for key, value in store.scan("k"):
        seen.append(key)
        await store.put(f"done/{key}", value)
    assert seen == [f"k{i}" for i in range(10)]
    assert len(await scan(store, "done/")) == 10


_keys = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
_ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "delete"]), st.sampled_from(["", "a", "a%", "ab", "b_"])
    ).flatmap(lambda op: st.tuples(st.just(op[0]), _keys.map(lambda k: op[1] + k), _values)),
    max_size=25,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=_ops, prefix=st.sampled_from(["", "a", "a%", "ab", "b", "b_", "%", "_"]))
async def test_store_matches_a_dict(
    storage: Storage, ops: list[tuple[str, str, Any]], prefix: str
) -> None:
    store = storage.store(f"h{uuid.uuid4().hex}")
    model: dict[str, Any] = {}
    for op, key, value in ops:
        if op == "put":
            await store.put(key, value)
            model[key] = value
        else:
            assert await store.delete(key) == (key in model)
            model.pop(key, None)
    for key, value in model.items():
        assert await store.get(key) == value
    expected = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
    assert await scan(store, prefix) == expected
