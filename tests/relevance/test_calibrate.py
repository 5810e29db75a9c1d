"""The relevance model (calibrate.py): probabilities, admission, and what the ranker returns."""

from __future__ import annotations

import pytest
from catalogs import seed_papers

from newsletter.relevance import calibrate
from newsletter.relevance.rank import Ranker


@pytest.fixture(scope="module")
def seeds() -> Ranker:
    return Ranker(seed_papers())


def test_a_stronger_facet_score_never_lowers_the_probability() -> None:
    row = [0.5, 0.5, 0.5, 0.2, 2.0, 3.0, 0.0, 1.0, 0.0, 0.2]
    chances = [calibrate.WORDS.probability([score, *row[1:]]) for score in (0.2, 0.5, 0.8, 1.2)]
    assert chances == sorted(chances)
    assert all(0.0 < c < 1.0 for c in chances)


def test_the_most_probable_candidates_are_kept_and_a_few_candidates_all_are() -> None:
    few = {d: 0.1 for d in range(calibrate.FEW)}
    assert calibrate.admitted(few) == few
    many = {d: 0.01 * d for d in range(40)}  # all below the threshold
    best = sorted(many, key=lambda d: -many[d])[:calibrate.KEEP]
    assert set(calibrate.admitted(many)) == set(best)
    mixed = {**many, 100: 0.9, 101: calibrate.THRESHOLD}
    assert {100, 101} <= set(calibrate.admitted(mixed))


def test_scores_are_probabilities_in_order_and_the_model_was_fitted(seeds: Ranker) -> None:
    assert any(calibrate.WORDS.coef) and len(calibrate.WORDS.coef) == len(calibrate.FEATURES)
    matches = seeds.rank("neural architecture search")
    assert len(matches) >= 10
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < s <= 1.0 for s in scores)
    assert all(m.reason.startswith("matches: ") for m in matches[:5])


def test_candidates_are_the_papers_whose_facet_score_reaches_the_floor(seeds: Ranker) -> None:
    docs, rows, scores = seeds._scorer.candidates(seeds.understand("optimal transport"))
    assert docs and len(rows) == len(docs)
    assert all(len(row) == len(calibrate.FEATURES) for row in rows)
    assert {d for d, s in scores.items() if s >= seeds.min_score} == set(docs)
    assert {m.paper.id for m in seeds.rank("optimal transport")} <= {
        seeds.papers[d].id for d in docs}


def test_a_topic_the_catalog_says_nothing_about_still_gets_nothing(seeds: Ranker) -> None:
    assert seeds.rank("medieval poetry") == []
    assert seeds.rank("opera singing technique") == []
