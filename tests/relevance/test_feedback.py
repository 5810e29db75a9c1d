from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest
from catalogs import seed_papers

from newsletter.models import OwnPaper, Paper, ReaderSignals, Subscriber
from newsletter.relevance.feedback import SAVED_TOPIC, ReaderModel
from newsletter.relevance.rank import Ranker
from newsletter.relevance.select import build_digest
from newsletter.relevance.vectors import vectors_for

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc)


def reader(*topics: str, max_papers: int = 10) -> Subscriber:
    return Subscriber(email="ada@example.org", name="Ada", topics=topics, max_papers=max_papers)


@pytest.fixture(scope="module")
def ranker() -> Ranker:
    return Ranker(seed_papers())


def titles(digest) -> list[str]:
    return [item.paper.title for item in digest.items]


@pytest.mark.parametrize("topics", [("GNN",), ("diffusion models", "PINNs"),
                                    ("optimal transport", "NAS", "contrastive learning")])
def test_no_signals_or_empty_signals_give_exactly_the_topics_digest(
        ranker: Ranker, topics: tuple[str, ...]) -> None:
    sub = reader(*topics)
    today = build_digest(sub, ranker, (), "e", NOW)
    assert today is not None
    assert build_digest(sub, ranker, (), "e", NOW, reader=None) == today
    assert build_digest(sub, ranker, (), "e", NOW, reader=ReaderSignals()) == today


def test_a_hidden_paper_and_its_near_twins_never_come_back(ranker: Ranker) -> None:
    sub = reader("GNN", max_papers=50)
    today = build_digest(sub, ranker, (), "e", NOW)
    hidden = today.items[0].paper
    twins = vectors_for(ranker).twins(hidden, ReaderModel(
        vectors_for(ranker), ReaderSignals(hidden=(hidden.id,))).knobs)
    digest = build_digest(sub, ranker, (), "e", NOW, reader=ReaderSignals(hidden=(hidden.id,)))
    assert hidden.id not in digest.paper_ids
    assert not twins & set(digest.paper_ids)
    # and a twin is a near-duplicate by the ranker's own measure
    assert all(ranker.near_duplicate(hidden, ranker.papers[ranker.index.doc_of[t]])
               for t in twins)


def test_a_twin_of_a_hidden_paper_is_left_out_even_when_its_topic_ranks_it() -> None:
    base = "Sheaf neural networks generalise graph convolution to cellular sheaves on graphs"
    papers = [
        Paper(id="a", title="Sheaf Neural Networks for Graphs", abstract=base),
        Paper(id="a2", title="Sheaf Neural Networks for Graphs (extended)", abstract=base),
        Paper(id="b", title="Graph Neural Networks for Molecules",
              abstract="Message passing predicts molecular properties."),
    ]
    small = Ranker(papers)
    sub = reader("graph neural networks")
    assert {"a", "a2", "b"} <= {m.paper.id for m in small.rank(sub.topics[0])}
    today = build_digest(sub, small, (), "e", NOW).paper_ids
    shown = next(pid for pid in today if pid in ("a", "a2"))  # one of the twins, not both
    digest = build_digest(sub, small, (), "e", NOW, reader=ReaderSignals(hidden=(shown,)))
    assert digest.paper_ids == ["b"]


def test_a_liked_paper_brings_similar_papers_the_topics_did_not_with_a_checkable_reason(
        ranker: Ranker) -> None:
    sub = reader("graph rewiring oversquashing")  # a narrow topic: places are left free
    today = build_digest(sub, ranker, (), "e", NOW)
    liked = today.items[0].paper
    signals = ReaderSignals(liked=(liked.id,))
    digest = build_digest(sub, ranker, {liked.id}, "e", NOW, reader=signals)
    (section,) = [s for s in digest.sections if s.topic == SAVED_TOPIC]
    assert section is digest.sections[-1]
    assert section.items
    for item in section.items:
        assert item.reason == f"like: {liked.title}"
        assert item.paper.id not in today.paper_ids
    assert len(digest.items) <= sub.max_papers


def test_the_saved_section_takes_only_places_the_topics_leave_free(ranker: Ranker) -> None:
    sub = reader("GNN", max_papers=5)
    today = build_digest(sub, ranker, (), "e", NOW)
    assert len(today.items) == 5
    liked = today.items[0].paper
    digest = build_digest(sub, ranker, {liked.id}, "e", NOW,
                          reader=ReaderSignals(liked=(liked.id,)))
    assert SAVED_TOPIC not in [s.topic for s in digest.sections]
    assert len(digest.items) == 5


def test_own_papers_outside_the_catalog_count_by_their_text_and_are_never_suggested(
        ranker: Ranker) -> None:
    own = OwnPaper(key="mine2024", title="Physics-informed neural networks for fluid flow",
                   abstract="We train physics-informed neural networks on the residuals of the "
                            "Navier-Stokes equations and solve inverse problems.")
    sub = reader("quantum error correction")  # a topic the seeds say little about
    digest = build_digest(sub, ranker, (), "e", NOW, reader=ReaderSignals(own=(own,)))
    assert digest is not None
    (section,) = [s for s in digest.sections if s.topic == SAVED_TOPIC]
    assert all(item.reason == f"like: {own.title}" for item in section.items)
    assert any("physics-informed" in (item.paper.title + item.paper.abstract).lower()
               for item in section.items)
    # a catalog paper given as their own (by arXiv id, unmatched) is theirs: not suggested
    catalog_paper = section.items[0].paper
    mine = OwnPaper(key=f"arxiv:{catalog_paper.id}", title="")
    again = build_digest(sub, ranker, (), "e", NOW, reader=ReaderSignals(own=(own, mine)))
    assert catalog_paper.id not in again.paper_ids


def test_liked_papers_pull_similar_ones_up_and_hidden_ones_push_them_down(
        ranker: Ranker) -> None:
    sub = reader("diffusion models", max_papers=50)
    today = build_digest(sub, ranker, (), "e", NOW)
    model_like = ReaderModel(vectors_for(ranker), ReaderSignals(liked=(today.items[-1].paper.id,)))
    model_hide = ReaderModel(vectors_for(ranker), ReaderSignals(hidden=(today.items[-1].paper.id,)))
    close = max(today.items[:-1], key=lambda i: vectors_for(ranker).closeness(
        i.paper, today.items[-1].paper, 0.5)).paper
    assert model_like.factor(close) > 1.0 > model_hide.factor(close)


def test_a_liked_paper_outside_the_window_counts_once_made_known() -> None:
    papers = [Paper(id=f"p{i}", title=t, abstract=a) for i, (t, a) in enumerate([
        ("Graph neural networks for traffic", "Forecasting road traffic with graph networks."),
        ("Graph neural networks for molecules", "Predicting molecule properties with graphs."),
        ("Molecule generation by diffusion", "Diffusion models generate molecule graphs."),
    ])]
    window = Ranker(papers)
    old = Paper(id="old", title="Molecule property prediction", abstract="Molecules, graphs.")
    signals = ReaderSignals(liked=("old",))
    sub = reader("graph neural networks")
    before = build_digest(sub, window, (), "e", NOW, reader=signals)
    vectors_for(window).know([old])
    after = build_digest(sub, window, (), "e", NOW, reader=signals)
    assert SAVED_TOPIC not in [s.topic for s in before.sections]
    assert [i.reason for i in after.sections[-1].items] == ["like: Molecule property prediction"]


def test_reader_model_work_is_shared_between_readers(ranker: Ranker) -> None:
    vectors = vectors_for(ranker)
    assert vectors_for(ranker) is vectors
    paper = ranker.papers[0]
    first = vectors.neighbours(paper, ReaderModel(vectors, ReaderSignals()).knobs)
    assert vectors.neighbours(paper, replace(ReaderModel(vectors, ReaderSignals()).knobs)) is first
