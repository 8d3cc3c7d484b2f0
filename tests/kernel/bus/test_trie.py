"""The subject trie against the SDK's reference matcher."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from orrery.kernel.bus import SubjectTrie  # noqa: TID251 - the ban is meant for orrery.sdk
from orrery.sdk import subject_matches

LITERALS = ("a", "b", "c")


@st.composite
def patterns(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(st.sampled_from((*LITERALS, "*")), min_size=1, max_size=4))
    if draw(st.booleans()):
        tokens[-1] = ">"
    return ".".join(tokens)


topics = st.lists(st.sampled_from(LITERALS), min_size=1, max_size=5).map(".".join)


def test_literal_star_and_rest() -> None:
    trie: SubjectTrie[str] = SubjectTrie()
    for pattern in ("a.b", "a.*", "a.>", "*.b", ">", "a.b.c"):
        trie.add(pattern, pattern)
    assert sorted(trie.match("a.b")) == sorted(["a.b", "a.*", "a.>", "*.b", ">"])
    assert sorted(trie.match("a.b.c")) == sorted(["a.>", ">", "a.b.c"])
    assert sorted(trie.match("a")) == [">"]
    assert trie.match("x.y.z") == [">"]


def test_same_value_under_several_patterns_and_duplicates() -> None:
    trie: SubjectTrie[int] = SubjectTrie()
    trie.add("a.*", 1)
    trie.add("a.b", 1)
    trie.add("a.b", 2)
    assert sorted(trie.match("a.b")) == [1, 1, 2]
    assert len(trie) == 3


def test_remove_by_identity_and_prune() -> None:
    trie: SubjectTrie[object] = SubjectTrie()
    first, second = object(), object()
    trie.add("a.b.c", first)
    trie.add("a.b.c", second)
    assert trie.remove("a.b.c", first)
    assert not trie.remove("a.b.c", first)
    assert not trie.remove("a.x", second)
    assert trie.match("a.b.c") == [second]
    assert trie.remove("a.b.c", second)
    assert len(trie) == 0
    assert trie._root.children == {}  # empty branches are pruned


@settings(max_examples=300, deadline=None)
@given(
    st.lists(patterns(), min_size=1, max_size=12),
    st.lists(topics, min_size=1, max_size=10),
    st.data(),
)
def test_matches_reference_matcher(pats: list[str], tops: list[str], data: st.DataObject) -> None:
    trie: SubjectTrie[int] = SubjectTrie()
    for i, pattern in enumerate(pats):
        trie.add(pattern, i)
    removed = set(data.draw(st.sets(st.integers(0, len(pats) - 1))))
    for i in removed:
        assert trie.remove(pats[i], i)
    for topic in tops:
        expected = [i for i, p in enumerate(pats) if i not in removed and subject_matches(p, topic)]
        assert sorted(trie.match(topic)) == expected, (pats, topic)
