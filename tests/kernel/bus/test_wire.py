"""CloudEvents JSON on the NATS wire: the fast codec agrees with `Event.to_json`."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from orrery.kernel._config import BusConfig
from orrery.kernel.bus import MemoryBus, create_bus  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.kernel.bus.nats import NatsBus, decode_event, describe_url, encode_event  # noqa: TID251
from orrery.sdk import Event, InvalidEvent

json_data = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    data=json_data,
    subject=st.none() | st.text(min_size=1),
    time_ns=st.integers(0, 4_000_000_000 * 10**9),
    headers=st.none()
    | st.dictionaries(st.from_regex(r"x[a-z0-9]{0,8}", fullmatch=True), st.text(), max_size=2),
)
def test_round_trip_matches_to_json(
    data: Any, subject: str | None, time_ns: int, headers: dict[str, str] | None
) -> None:
    event = Event(
        id="01a1fd9e-db1f-7505-b073-00fe5b6ddb56",
        type="orders.created",
        source="orrery://n/p",
        time_ns=time_ns,
        subject=subject,
        data=data,
        causationid="c",
        headers=headers or None,
    )
    raw = encode_event(event)
    assert raw == event.to_json()
    assert decode_event(raw) == event


def test_foreign_cloudevents_are_accepted_and_garbage_is_refused() -> None:
    minimal = (
        b'{"specversion":"1.0","id":"1","type":"a.b","source":"x","time":"2026-01-02T03:04:05Z"}'
    )
    event = decode_event(minimal)
    assert (event.type, event.time_ns) == ("a.b", 1767323045 * 10**9)
    for bad in (b"not json", b"[]", b'{"specversion":"0.3"}'):
        with pytest.raises(InvalidEvent):
            decode_event(bad)


def test_create_bus_picks_the_backend() -> None:
    assert type(create_bus(BusConfig(), "n")) is MemoryBus
    nats_bus = create_bus(BusConfig(backend="nats", url="nats://h:1", prefix="p", ack_wait=3), "n")
    assert isinstance(nats_bus, NatsBus)
    assert (nats_bus.url, nats_bus.prefix, nats_bus.stream, nats_bus.ack_wait) == (
        "nats://h:1",
        "p",
        "P_DURABLE",
        3,
    )
    assert describe_url("nats://user:secret@h:1,nats://g") == "h:1,g:4222"
    assert time.time_ns() > 0
