"""PromQL-style series selectors: ``http_requests_total{route="/x", status=~"5.."}``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from .errors import InvalidSelector

__all__ = ["Matcher", "Selector"]

_SELECTOR = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(.*)\})?\s*", re.DOTALL)
_MATCHER = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)', re.DOTALL
)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label condition: ``=``, ``!=``, ``=~`` or ``!~`` (regexes match the whole value)."""

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy the condition; a missing label counts as ``""``."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = _compile(self.value).fullmatch(actual) is not None
        return found if self.op == "=~" else not found


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True)
class Selector:
    """A metric name (optional) and label matchers, parsed from PromQL syntax."""

    text: str
    metric: str | None
    matchers: tuple[Matcher, ...]

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse ``name{label="v", other!~"re"}``; the name or the braces may be omitted."""
        match = _SELECTOR.fullmatch(text)
        if match is None or not text.strip():
            raise InvalidSelector(text, "expected a metric name and/or {label matchers}")
        name, body = match.group(1), match.group(2)
        matchers: list[Matcher] = []
        if body is not None:
            pos = 0
            body = body.strip()
            while pos < len(body):
                m = _MATCHER.match(body, pos)
                if m is None:
                    raise InvalidSelector(text, f"cannot read a matcher at {body[pos:]!r}")
                label, op, raw = m.groups()
                value = raw.encode().decode("unicode_escape") if "\\" in raw else raw
                if op in ("=~", "!~"):
                    try:
                        _compile(value)
                    except re.error as e:
                        raise InvalidSelector(text, f"bad regex {value!r}: {e}") from e
                matchers.append(Matcher(label, op, value))
                pos = m.end()
        if name is None and not matchers:
            raise InvalidSelector(text, "it selects nothing")
        return cls(text, name, tuple(matchers))

    def matches(self, metric: str, labels: Mapping[str, str]) -> bool:
        """Whether a series of ``metric`` with ``labels`` is selected."""
        if self.metric is not None and metric != self.metric:
            return False
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        return self.text
