from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from orrery.sandbox import parse_permissions, pattern_covers
from orrery.sdk import subject_matches


def test_parse_and_allows() -> None:
    p = parse_permissions([
        "bus.publish:orders.>", "bus.subscribe:orders.*", "bus.request:svc.time",
        "services.provide:orders", "services.get:clock", "store", "net",
        "fs.read:/srv/data", "fs.write:/srv/out/",
    ])
    assert p.allows("bus.publish", "orders.new.eu")
    assert not p.allows("bus.publish", "orders")
    assert p.allows("bus.subscribe", "orders.new")
    assert p.allows("bus.subscribe", "orders.*")
    assert not p.allows("bus.subscribe", "orders.>")
    assert p.allows("bus.request", "svc.time")
    assert not p.allows("bus.request", "svc.date")
    assert p.allows("services.get", "clock") and not p.allows("services.get", "vault")
    assert p.allows("store") and p.allows("net") and not p.allows("journal")
    assert p.allows("fs.read", "/srv/data/a/b.txt") and not p.allows("fs.read", "/srv/database")
    assert p.allows("fs.write", "/srv/out/x") and not p.allows("fs.write", "/srv/data/x")
    assert not p.allows("fs.read", "/srv/data/../secret")
    assert p.paths("fs.write") == ("/srv/out",)
    assert p.net


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("bus.publsh:x", "unknown scope 'bus.publsh'"),
        ("bus.publish", "needs a topic pattern"),
        ("bus.publish:a..b", "invalid topic"),
        ("store:all", "takes no argument"),
        ("fs.read:relative/path", "must be absolute"),
    ],
)
def test_bad_entries_name_the_entry_and_scopes(entry: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_permissions([entry])
    assert repr(entry) in str(info.value)
    assert words in str(info.value)


def test_a_string_is_not_a_list() -> None:
    with pytest.raises(ValueError, match="list of strings"):
        parse_permissions("store")  # type: ignore[arg-type]


def test_unknown_scope_lists_valid_scopes() -> None:
    with pytest.raises(ValueError, match=r"bus\.publish:<topic pattern>.*fs\.write"):
        parse_permissions(["nope"])


tokens = st.sampled_from(["a", "b", "*"])
patterns = st.builds(
    lambda ts, tail: ".".join(ts + ([">"] if tail else [])),
    st.lists(tokens, min_size=1, max_size=3), st.booleans(),
)
topics = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5).map(".".join)


@given(patterns, patterns, topics)
def test_covers_is_sound(granted: str, wanted: str, topic: str) -> None:
    # If granted covers wanted, every topic wanted matches is matched by granted.
    if pattern_covers(granted, wanted) and subject_matches(wanted, topic):
        assert subject_matches(granted, topic)
