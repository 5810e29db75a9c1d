"""The relevance model (calibrate.py): probabilities, admission, and what the ranker returns."""

from __future__ import annotations

import pytest
from catalogs import seed_papers

from newsletter.relevance import calibrate
from newsletter.relevance.rank import Ranker
from newsletter.relevance.text import terms


@pytest.fixture(scope="module")
def seeds() -> Ranker:
    return Ranker(seed_papers())


def test_a_stronger_facet_score_never_lowers_the_probability() -> None:
    row = [0.5, 0.5, 0.5, 0.2, 2.0, 3.0, 0.0, 1.0, 0.0, 0.2, 1.0]
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


def test_candidates_are_the_facet_scorings_papers_and_the_best_by_bm25(seeds: Ranker) -> None:
    query = seeds.understand("optimal transport")
    docs, rows, scores = seeds._scorer.candidates(query)
    proposed = {d for d, s in scores.items() if s >= seeds.min_score}
    assert docs and len(rows) == len(docs)
    assert all(len(row) == len(calibrate.FEATURES) for row in rows)
    flag = calibrate.FEATURES.index("facet_candidate")
    assert {d for d, row in zip(docs, rows) if row[flag]} == proposed
    assert proposed < set(docs)  # widened: papers saying the words below the facets' floor
    assert {m.paper.id for m in seeds.rank("optimal transport")} <= {
        seeds.papers[d].id for d in docs}
    held, calibrate.WIDEN = calibrate.WIDEN, 0
    try:
        assert set(seeds._scorer.candidates(query)[0]) == proposed
    finally:
        calibrate.WIDEN = held


def test_a_paper_the_facets_did_not_propose_is_shown_only_when_probable() -> None:
    chances = {0: 0.2, 1: 0.1, 2: 0.3, 3: calibrate.THRESHOLD + 0.1}
    assert set(calibrate.admitted(chances, proposed={0, 1})) == {0, 1, 3}
    many = {d: 0.01 * d for d in range(40)}
    assert set(calibrate.admitted(many, proposed={0, 1, 2, 3, 4, 5})) == {
        5, 4, 3}  # KEEP counts only the proposed papers


def test_a_widened_papers_reason_names_the_words_it_shares() -> None:
    ranker = Ranker(seed_papers())  # a fresh memo: the threshold below changes the result
    query = ranker.understand("optimal transport")
    docs, _, scores = ranker._scorer.candidates(query)
    widened = {ranker.papers[d].id for d in docs if scores.get(d, 0.0) < ranker.min_score}
    held, calibrate.THRESHOLD = calibrate.THRESHOLD, 0.0  # admit every candidate
    try:
        matches = [m for m in ranker.rank("optimal transport") if m.paper.id in widened]
    finally:
        calibrate.THRESHOLD = held
    assert matches
    for match in matches:
        assert match.reason.startswith(("shares words with optimal transport: ",
                                        "related to optimal transport: "))
        words = match.reason.partition(": ")[2].split(", ")
        said = set(terms(f"{match.paper.title} {match.paper.abstract}"))
        assert words and all(set(terms(w)) <= said for w in words)


def test_a_topic_the_catalog_says_nothing_about_still_gets_nothing(seeds: Ranker) -> None:
    assert seeds.rank("medieval poetry") == []
    assert seeds.rank("opera singing technique") == []
