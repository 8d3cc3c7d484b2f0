"""PromQL-style selectors."""

from __future__ import annotations

import pytest
from orrery_metrics import InvalidSelector, Selector


def test_parse_name_and_matchers() -> None:
    sel = Selector.parse('http_requests_total{route="/x", status=~"5..",code!~"4.*" , a!="b"}')
    assert sel.metric == "http_requests_total"
    assert [(m.label, m.op, m.value) for m in sel.matchers] == [
        ("route", "=", "/x"),
        ("status", "=~", "5.."),
        ("code", "!~", "4.*"),
        ("a", "!=", "b"),
    ]


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("m", {}, True),
        ('m{a="1"}', {"a": "1"}, True),
        ('m{a="1"}', {"a": "2"}, False),
        ('m{a=~"1|2"}', {"a": "2"}, True),
        ('m{a=~"1"}', {"a": "12"}, False),  # regexes are anchored
        ('m{a!~"1.*"}', {"a": "2"}, True),
        ('m{a=""}', {}, True),  # a missing label is empty
        ('{a="1"}', {"a": "1"}, True),
        ('m{a="say \\"hi\\""}', {"a": 'say "hi"'}, True),
    ],
)
def test_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Selector.parse(text).matches("m", labels) is expected


def test_other_metric_does_not_match() -> None:
    assert not Selector.parse('m{a="1"}').matches("n", {"a": "1"})


@pytest.mark.parametrize("text", ["", "{}", "m{a=1}", 'm{a~"x"}', 'm{a=~"("}', "9m"])
def test_bad_selectors_are_explained(text: str) -> None:
    with pytest.raises(InvalidSelector) as caught:
        Selector.parse(text)
    assert caught.value.selector == text
