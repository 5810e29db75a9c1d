"""How a topic as typed becomes facets and qualifiers (query.py); ranking is in test_rank.py."""

from __future__ import annotations

import pytest

from newsletter.relevance.query import Query, parse
from newsletter.relevance.text import Vocabulary, default_vocabulary

COMMON = {"deep", "learn", "neural", "network", "machin", "model"}


def common(terms: list[str]) -> bool:
    return bool(terms) and all(t in COMMON for t in terms)


def facets(query: Query) -> list[tuple[str, list[str]]]:
    return [(f.label, [" ".join(w for w, _ in q) for q in f.qualifiers + f.context])
            for f in query.facets]


@pytest.mark.parametrize("topic, expected", [
    ("meta-learning / few-shot learning", ["meta-learning", "few-shot learning"]),
    ("meta-learning/few-shot learning", ["meta-learning", "few-shot learning"]),
    ("continual learning and catastrophic forgetting",
     ["continual learning", "catastrophic forgetting"]),
    ("pruning, sparsity, lottery tickets", ["pruning", "sparsity", "lottery tickets"]),
    ("NeRF; 3D reconstruction", ["NeRF", "3D reconstruction"]),
    ("diffusion models or flow matching", ["diffusion models", "flow matching"]),
    ("memory-augmented networks (NTM)", ["memory-augmented networks", "NTM"]),
    ("GNN", ["GNN"]),
])
def test_compound_topics_become_alternative_facets(topic: str, expected: list[str]) -> None:
    assert [label for label, _ in facets(parse(topic, default_vocabulary()))] == expected


@pytest.mark.parametrize("topic, expected", [
    ("transformers in vision", [("transformers", ["vision"])]),
    ("explainability for graph neural networks",
     [("explainability", ["graph neural networks"])]),
    ("equivariance and symmetry in neural networks",
     [("equivariance", ["neural networks"]), ("symmetry", ["neural networks"])]),
    ("quantization of LLMs", [("quantization of LLMs", [])]),  # "of" binds, it does not qualify
])
def test_a_qualifier_attaches_to_every_facet(topic: str, expected: list) -> None:
    assert facets(parse(topic, default_vocabulary())) == expected


def test_a_common_head_makes_its_qualifier_the_subject() -> None:
    # "deep learning" says nothing in a catalog of deep learning papers: the papers must be
    # about weather, and deep learning only boosts them.
    query = parse("deep learning for weather", default_vocabulary(), common)
    assert facets(query) == [("weather", ["deep learning"])]
    assert query.facets[0].qualifiers == ()  # common words qualify nothing: they are context
    # Without a notion of common words the head stays the subject.
    assert facets(parse("deep learning for weather", default_vocabulary())) == [
        ("deep learning", ["weather"])]


def test_a_common_alternative_qualifies_the_specific_ones() -> None:
    query = parse("deep learning and robotics", default_vocabulary(), common)
    assert facets(query) == [("robotics", ["deep learning"])]
    # A topic made only of common words keeps them all.
    assert facets(parse("neural networks", default_vocabulary(), common)) == [
        ("neural networks", [])]


@pytest.mark.parametrize("topic, expected", [
    ("learning to optimize (L2O)", ["learning to optimize", "L2O"]),
    ("anomaly detection / neural models", ["anomaly detection", "neural models"]),
])
def test_an_alternative_of_common_words_naming_one_thing_stays_a_facet(
        topic: str, expected: list[str]) -> None:
    """Each of its words is common but few papers say the phrase ("learning to optimize"):
    it is what a reader means, not context, even beside a specific alternative (an
    abbreviation the catalog may never use)."""
    def generic(terms: list[str]) -> bool:  # "optimize" is common here too
        return bool(terms) and all(t in COMMON or t == "optim" for t in terms)

    def said_often(terms: list[str]) -> bool:
        return terms == ["deep", "learn"]

    query = parse(topic, default_vocabulary(), generic, said_often)
    assert [f.label for f in query.facets] == expected
    # without knowing how often phrases are said, each common alternative was set aside
    assert len(parse(topic, default_vocabulary(), generic).facets) == 1
    # "deep learning" is said by many papers: beside robotics it is still context
    assert facets(parse("deep learning and robotics", default_vocabulary(), common,
                        said_often)) == [("robotics", ["deep learning"])]


def test_a_vocabulary_phrase_keeps_its_own_connectives() -> None:
    vocabulary = Vocabulary({"SAR": {"expansions": ["search and rescue"]},
                             "L2S": {"expansions": ["learning to sort in context"]}})
    assert facets(parse("search and rescue", vocabulary)) == [("search and rescue", [])]
    assert facets(parse("learning to sort in context", vocabulary)) == [
        ("learning to sort in context", [])]


def test_spellings_of_one_topic_share_a_key() -> None:
    vocabulary = default_vocabulary()
    assert parse("Graph Neural Networks", vocabulary).key == parse("graph-neural network",
                                                                   vocabulary).key
    assert parse("meta-learning / few-shot", vocabulary).key == parse(
        "meta-learning, few-shot", vocabulary).key
    assert parse("GNN", vocabulary).key != parse("GNN for PDEs", vocabulary).key


def test_punctuation_and_stopwords_only_make_no_facet() -> None:
    assert parse("  / , and ; ", default_vocabulary()).facets == ()
    assert parse("the and of", default_vocabulary()).facets == ()
