"""orrery.sdk.http: query parameters parsed, with a 400 that names the parameter."""

from __future__ import annotations

import pytest
from orrery.sdk import HttpError, http
from orrery.sdk.testing import FakeRequest


def req(**query: str) -> FakeRequest:
    return FakeRequest("GET", "/items", query=query)


def test_absent_or_empty_parameters_give_the_default() -> None:
    assert http.query_int(req(), "limit", 10) == 10
    assert http.query_int(req(limit=""), "limit", 10) == 10
    assert http.query_float(req(), "ratio") is None
    assert http.query_bool(req(), "all", False) is False
    assert http.query_str(req(), "q", "x") == "x"
    assert http.query_choice(req(), "state", ["a", "b"], default="a") == "a"


def test_good_values_are_parsed() -> None:
    assert http.query_int(req(limit="7"), "limit", 10, min=1, max=100) == 7
    assert http.query_float(req(ratio="0.25"), "ratio") == 0.25
    assert http.query_bool(req(all="Yes"), "all") is True
    assert http.query_bool(req(all="off"), "all") is False
    assert http.query_str(req(q="abc"), "q", max_length=3) == "abc"
    assert http.query_choice(req(state="b"), "state", ["a", "b"]) == "b"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: http.query_int(req(limit="ten"), "limit"), "expected an integer, got 'ten'"),
        (lambda: http.query_int(req(limit="0"), "limit", min=1), "at least 1"),
        (lambda: http.query_int(req(limit="500"), "limit", max=100), "at most 100"),
        (lambda: http.query_float(req(limit="x"), "limit"), "expected a number"),
        (lambda: http.query_float(req(limit="nan"), "limit"), "finite"),
        (lambda: http.query_bool(req(limit="maybe"), "limit"), "true or false"),
        (lambda: http.query_str(req(limit="abcd"), "limit", max_length=3), "at most 3"),
        (lambda: http.query_choice(req(limit="c"), "limit", ["a", "b"]), "one of a, b"),
    ],
)
def test_bad_values_are_a_400_naming_the_parameter(call, expected: str) -> None:
    with pytest.raises(HttpError) as caught:
        call()
    assert caught.value.status == 400
    assert caught.value.field == "limit"
    assert "'limit'" in str(caught.value) and expected in str(caught.value)
