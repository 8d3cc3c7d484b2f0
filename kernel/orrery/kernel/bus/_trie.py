"""A token trie over NATS subject patterns.

Matching walks one level per topic token and only follows the literal child, the ``*``
child and the ``>`` child of each live node, so its cost depends on how many patterns
overlap the topic, not on how many patterns exist.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["SubjectTrie"]

T = TypeVar("T")


class _Node(Generic[T]):
    __slots__ = ("children", "values")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        # Values whose pattern ends exactly at this node.
        self.values: list[T] = []


class SubjectTrie(Generic[T]):
    """Maps subscription patterns to values; `match` finds the values for a topic.

    Patterns and topics are assumed valid (see `orrery.sdk.validate_pattern`). A value
    may be stored under several patterns, and several values under one pattern.
    """

    __slots__ = ("_root", "_size")

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, pattern: str, value: T) -> None:
        """Store ``value`` under ``pattern``."""
        node = self._root
        for token in pattern.split("."):
            child = node.children.get(token)
            if child is None:
                child = node.children[token] = _Node()
            node = child
        node.values.append(value)
        self._size += 1

    def remove(self, pattern: str, value: T) -> bool:
        """Remove ``value`` (by identity) from ``pattern``; returns whether it was there."""
        path: list[tuple[_Node[T], str]] = []
        node = self._root
        for token in pattern.split("."):
            child = node.children.get(token)
            if child is None:
                return False
            path.append((node, token))
            node = child
        for i, stored in enumerate(node.values):
            if stored is value:
                del node.values[i]
                break
        else:
            return False
        self._size -= 1
        # Prune nodes left empty so a long-lived bus with churning patterns stays small.
        while path and not node.values and not node.children:
            parent, token = path.pop()
            del parent.children[token]
            node = parent
        return True

    def match(self, topic: str) -> list[T]:
        """Values of every pattern that matches concrete ``topic``."""
        out: list[T] = []
        nodes = [self._root]
        for token in topic.split("."):
            following: list[_Node[T]] = []
            for node in nodes:
                children = node.children
                if not children:
                    continue
                rest = children.get(">")
                if rest is not None:
                    # '>' needs at least one token, and `token` is one still to match.
                    out.extend(rest.values)
                literal = children.get(token)
                if literal is not None:
                    following.append(literal)
                star = children.get("*")
                if star is not None:
                    following.append(star)
            if not following:
                return out
            nodes = following
        for node in nodes:
            out.extend(node.values)
        return out
