"""NATS subject syntax: validation and a reference matcher.

Topics are dot-separated tokens. In subscription patterns ``*`` matches exactly one token
and ``>`` (only as the last token) matches one or more remaining tokens.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import InvalidTopic

__all__ = ["MAX_TOPIC_LENGTH", "subject_matches", "validate_pattern", "validate_topic"]

MAX_TOPIC_LENGTH = 512
_FORBIDDEN = frozenset(" \t\r\n\f\v\x00")


def _check_tokens(topic: object, *, wildcards: bool) -> list[str]:
    if not isinstance(topic, str):
        raise InvalidTopic(topic, f"expected a string, got {type(topic).__name__}")
    if not topic:
        raise InvalidTopic(topic, "it is empty")
    if len(topic) > MAX_TOPIC_LENGTH:
        raise InvalidTopic(topic, f"it is longer than {MAX_TOPIC_LENGTH} characters")
    if _FORBIDDEN.intersection(topic):
        raise InvalidTopic(topic, "it contains whitespace or NUL")
    tokens = topic.split(".")
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if not token:
            raise InvalidTopic(topic, f"token {i + 1} is empty (leading, trailing or double dot)")
        if token in ("*", ">"):
            if not wildcards:
                raise InvalidTopic(topic, f"wildcard {token!r} is only allowed in subscriptions")
            if token == ">" and i != last:
                raise InvalidTopic(topic, "'>' must be the last token")
        elif "*" in token or ">" in token:
            raise InvalidTopic(topic, f"token {token!r} mixes a wildcard with other characters")
    return tokens


@lru_cache(maxsize=4096)
def validate_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid concrete topic, else raise `InvalidTopic`."""
    _check_tokens(topic, wildcards=False)
    return topic


@lru_cache(maxsize=4096)
def validate_pattern(pattern: str) -> str:
    """Return ``pattern`` if it is a valid subscription pattern, else raise `InvalidTopic`."""
    _check_tokens(pattern, wildcards=True)
    return pattern


def subject_matches(pattern: str, topic: str) -> bool:
    """Whether concrete ``topic`` matches subscription ``pattern`` (both assumed valid)."""
    p = pattern.split(".")
    t = topic.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(t) > i
        if i >= len(t) or (token != "*" and token != t[i]):
            return False
    return len(p) == len(t)
