import pytest
from orrery.sdk import InvalidTopic, subject_matches, validate_pattern, validate_topic


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        ("*.b.*", "x.b.y", True),
        (">", "anything.at.all", True),
        ("a.b", "a.b.c", False),
    ],
)
def test_reference_matcher(pattern: str, topic: str, expected: bool) -> None:
    assert subject_matches(pattern, topic) is expected


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "empty"),
        ("a..b", "token 2 is empty"),
        (".a", "token 1 is empty"),
        ("a.", "token 2 is empty"),
        ("a b", "whitespace"),
        ("a.*", "only allowed in subscriptions"),
        ("a.>", "only allowed in subscriptions"),
        (7, "expected a string"),
        ("x" * 600, "longer than"),
    ],
)
def test_invalid_topics_name_the_topic_and_the_reason(topic: object, reason: str) -> None:
    with pytest.raises(InvalidTopic, match=reason) as info:
        validate_topic(topic)  # type: ignore[arg-type]
    assert info.value.topic == topic


@pytest.mark.parametrize("pattern", ["a.>.b", "a.b*", "a.>x", "*a"])
def test_invalid_patterns(pattern: str) -> None:
    with pytest.raises(InvalidTopic):
        validate_pattern(pattern)


def test_valid_patterns_pass_through() -> None:
    assert validate_pattern("a.*.c.>") == "a.*.c.>"
