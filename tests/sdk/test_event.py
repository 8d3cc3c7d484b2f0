import json
from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st
from orrery.sdk import Event, InvalidEvent, new_event_id
from orrery.sdk.wire import EventIdGenerator


def make_event(**overrides: object) -> Event:
    fields: dict[str, object] = {
        "id": new_event_id(),
        "type": "orders.created",
        "source": "orrery://node-1/shop",
        "time_ns": 1_700_000_000_123_456_789,
        "subject": "order-7",
        "data": {"total": 12.5, "items": [1, 2]},
        "correlationid": "c-1",
        "causationid": "e-0",
        "headers": {"traceparent": "00-abc-01"},
    }
    fields.update(overrides)
    return Event(**fields)  # type: ignore[arg-type]


def test_json_round_trip_keeps_every_attribute_exactly() -> None:
    event = make_event()
    again = Event.from_json(event.to_json())
    assert again == event
    assert again.time_ns == 1_700_000_000_123_456_789


def test_serialised_form_is_cloudevents_1_0() -> None:
    doc = json.loads(make_event().to_json())
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "orders.created"
    assert doc["subject"] == "order-7"
    assert doc["time"] == "2023-11-14T22:13:20.123456789Z"
    assert doc["traceparent"] == "00-abc-01"  # headers are extension attributes
    assert doc["datacontenttype"] == "application/json"


def test_aliases_and_aware_time() -> None:
    event = make_event()
    assert event.topic == event.type and event.key == event.subject
    assert event.time.tzinfo is UTC
    assert event.time.year == 2023


def test_events_are_immutable() -> None:
    event = make_event()
    with pytest.raises(AttributeError):
        event.type = "x"  # type: ignore[misc]


HEAD = '{"specversion": "1.0", "id": "1", "type": "a", "source": "s", '


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"specversion": "0.3"}', "specversion must be '1.0'"),
        (
            '{"specversion": "1.0", "type": "a", "source": "s", "time": "2024-01-01T00:00:00Z"}',
            "'id'",
        ),
        ('{"specversion": "1.0", "id": "1", "type": "a", "source": "s"}', "'time' is required"),
        (
            HEAD + '"time": "yesterday"}',
            "not RFC 3339",
        ),
        (
            HEAD + '"time": "2024-13-01T00:00:00Z"}',
            "not a real date",
        ),
        (
            HEAD + '"time": "2024-01-01T00:00:00Z", "Bad-Header": "x"}',
            "Bad-Header",
        ),
        (
            HEAD + '"time": "2024-01-01T00:00:00Z", "subject": 5}',
            "'subject'",
        ),
    ],
)
def test_malformed_cloudevents_are_rejected_clearly(doc: str, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        Event.from_json(doc)


def test_time_with_offset_is_normalised_to_utc() -> None:
    doc = HEAD + '"time": "2024-01-01T02:00:00.5+02:00"}'
    assert Event.from_json(doc).time_ns == 1_704_067_200_500_000_000


def test_event_ids_are_uuid7_strictly_increasing_and_unique() -> None:
    gen = EventIdGenerator()
    now = 1_700_000_000_000_000_000
    ids = [gen.next_id(now + i * 100_000) for i in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 and i[14] == "7" and i[19] in "89ab" for i in ids)


def test_event_ids_never_go_backwards_when_the_clock_does() -> None:
    gen = EventIdGenerator()
    first = gen.next_id(2_000_000_000_000_000_000)
    second = gen.next_id(1_000_000_000_000_000_000)
    assert second > first


@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    ),
    subject=st.none() | st.text(min_size=1),
)
def test_any_json_data_round_trips(data: object, subject: str | None) -> None:
    event = make_event(data=data, subject=subject, headers=None)
    assert Event.from_json(event.to_json()) == event
