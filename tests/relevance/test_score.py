"""One facet against one paper (score.py): the shortcuts that make scoring cheap never change a
score. Each is checked against the plain computation it replaces, on generated papers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.models import Paper
from newsletter.relevance.index import Index
from newsletter.relevance.proximity import covers, has_phrase
from newsletter.relevance.score import (
    CLOSE,
    DEFAULT,
    SCATTERED,
    WORD_FOR_WORD,
    Bag,
    _phrase_said,
)

WORDS = ["graph", "neural", "network", "message", "passing", "physics", "informed", "operator",
         "learning", "the", "of", "deep", "kernel"]
PHRASES = [("graph", "neural", "network"), ("messag", "pass"), ("neural", "operator"),
           ("physic", "informed", "neural", "network"), ("deep", "learn"), ("kernel",)]

text = st.lists(st.sampled_from(WORDS), max_size=14).map(" ".join)
papers = st.lists(st.tuples(text, text), min_size=1, max_size=8)


def index_of(fields: list[tuple[str, str]]) -> Index:
    return Index([Paper(id=f"p{i}", title=t, abstract=a) for i, (t, a) in enumerate(fields)])


def said_plainly(index: Index, phrase: tuple[str, ...], weights: dict[str, float],
                 need: float, doc: int) -> int:
    """How a paper says a phrase, reading every field's positions (no shortcut)."""
    fields = index.positions(doc)
    if any(has_phrase(phrase, f) for f in fields):
        return WORD_FOR_WORD
    if any(covers(phrase, f, weights, need) for f in fields):
        return CLOSE
    return SCATTERED


@settings(max_examples=200, deadline=None)
@given(papers)
def test_how_a_paper_says_a_phrase_is_what_reading_its_positions_says(fields) -> None:
    index = index_of(fields)
    for phrase in PHRASES[:-1]:
        weights, need = Bag._coverage(index, phrase)
        for doc in range(index.size):
            assert _phrase_said(index, phrase, weights, need, doc) == said_plainly(
                index, phrase, weights, need, doc)


@settings(max_examples=200, deadline=None)
@given(papers, st.booleans())
def test_a_bags_reach_is_never_below_its_evidence(fields, own: bool) -> None:
    """``Bag.reach`` lets the facet scoring skip papers without judging them: it must bound the
    evidence from above, or a paper that would have been found is lost."""
    index = index_of(fields)
    for phrases in ([PHRASES[0]], [PHRASES[1], PHRASES[2]], [PHRASES[3]], [PHRASES[5]]):
        bag = Bag(index, phrases, "label", own=own)
        for doc in range(index.size):
            assert bag.reach(index, doc, DEFAULT) >= bag.evidence(index, doc, DEFAULT).score


@settings(max_examples=100, deadline=None)
@given(papers)
def test_base_scores_from_postings_equal_the_sum_over_the_words(fields) -> None:
    index = index_of(fields)
    bag = Bag(index, [PHRASES[0], PHRASES[4]], "label")
    for doc in range(index.size):
        plain = sum(w * index.saturated(doc, t) for t, w in bag.weights.items()) / bag.ideal
        assert bag.base(index, doc) == plain


def test_a_bounded_memo_starts_again_when_full_and_keeps_updating_a_held_key() -> None:
    from newsletter.relevance.index import Bounded

    memo: Bounded[int, str] = Bounded(2)
    memo[1], memo[2] = "a", "b"
    memo[2] = "b2"  # held: nothing is dropped
    assert memo == {1: "a", 2: "b2"}
    memo[3] = "c"  # full: starts again
    assert memo == {3: "c"}
