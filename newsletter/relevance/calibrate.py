"""Which of a topic's matches are relevant, as a probability learned from judged topics.

The facet scores of ``topic.TopicScorer`` say how much of a topic's words a paper carries; on
topics nobody tuned them for they ordered papers no better than textbook BM25, and a fixed
share of the best score admitted too much for broad topics and too little for narrow ones
(benchmarks/relevance/README.md, issue 13). Here each candidate paper of a topic is described by
a few numbers that compare across topics (its facet score, absolute and relative to the topic's
best, its BM25 score over the topic's words, both ranks, the words the topic's BM25 best
papers share, how broad the topic is in this catalog, with embeddings its closeness in meaning)
and a logistic model turns them into the probability that a person would judge it relevant.
The candidates are the papers whose facet score reaches ``Weights.admit`` and the ``WIDEN``
best by BM25 (and by meaning, with embeddings); they are ordered by that probability and
admitted when it reaches ``THRESHOLD``, calibrated on judged topics, not a share of the topic's
best.

The coefficients were fitted on the 92 tune topics only (``benchmarks/relevance/fit.py``, which
rewrites the block between the markers below) and frozen before the test-C topics were scored.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from newsletter.relevance import expand
from newsletter.relevance.index import Index

BROAD = 0.2  # a facet score this high counts the paper in the topic's breadth
K1, B = 1.2, 0.75  # textbook BM25 over title and abstract as one field
FEATURES = ("facet", "facet_share", "bm25_share", "bm25_idf", "bm25_rank", "breadth",
            "learned", "facets", "title_idf", "feedback", "facet_candidate")
MEANING = "meaning"  # with embeddings: cosine as a z-score over the catalog, if no word is said
# A topic the catalog says something about always yields its best matches: the KEEP most
# probable candidates, and every candidate when there are at most FEW (a small catalog, a
# narrow topic). Cross-validated on the dev topics this costs 0.002 of precision (README).
KEEP = 3
FEW = 5
# Besides the papers the facet scoring proposes, the WIDEN best papers by BM25 over the topic's
# words and their vocabulary variants, and (with embeddings) by closeness in meaning, are
# candidates too: 40% of the relevant papers of the tune topics are not facet candidates
# (benchmarks/relevance/README.md, round three). The model decides whether they are shown.
# Papers found only by the words BM25's best papers share are not added: in a small catalog
# that share saturates and the model admitted unrelated papers (tests/relevance/test_rank.py).
WIDEN = 40


@dataclass(frozen=True, slots=True)
class Model:
    """A logistic model over standardized features (the fit's mean and scale)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probability(self, row: Sequence[float]) -> float:
        z = self.intercept + sum(c * (x - m) / s for c, x, m, s in
                                 zip(self.coef, row, self.mean, self.scale))
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the facet scoring found for one topic: per paper its score (best facet plus a share
    of the others), whether learned words or meaning alone carried it, how many facets match."""

    scores: Mapping[int, float]
    learned: Mapping[int, bool]
    facets: Mapping[int, int]


def candidates(index: Index, evidence: Evidence, terms: Sequence[str], admit: float,
               meaning: Sequence[float] | None = None, widen: int | None = None,
               ) -> tuple[list[int], list[list[float]]]:
    """The topic's candidate papers and their features, in FEATURES order (plus MEANING when
    ``meaning`` z-scores are given): the papers whose facet score reaches ``admit``, and the
    ``widen`` (default WIDEN) best by BM25 and by meaning. None when no facet candidate:
    nothing says enough of the topic."""
    scores = evidence.scores
    proposed = {d for d, s in scores.items() if s >= admit}
    if not proposed:
        return [], []
    widen = WIDEN if widen is None else widen
    bm25, ideal = _bm25(index, terms)
    feedback = _feedback(index, _learned_words(index, bm25, terms))
    docs = sorted(proposed | _best(bm25, widen) | (
        _best(dict(enumerate(meaning)), widen) if meaning is not None else set()))
    ascending = sorted(bm25.values())
    # A paper's rank: how many papers score more (equal scores share a rank, so identical
    # papers get one chance); a paper without the words ranks past the catalog.
    bm25_rank = {d: len(ascending) - bisect_right(ascending, bm25[d]) for d in docs if d in bm25}
    best = max(scores.values())
    best_bm25 = max(bm25.values(), default=0.0) or 1.0
    best_feedback = max(feedback.values(), default=0.0) or 1.0
    breadth = math.log1p(sum(1 for s in scores.values() if s >= BROAD))
    idf = {t: index.idf(t) for t in dict.fromkeys(terms)}
    total_idf = sum(idf.values()) or 1.0
    rows = []
    for doc in docs:
        said = bm25.get(doc, 0.0)
        title = index.counts[doc][0]
        facet = scores.get(doc, 0.0)
        row = [facet, facet / best, said / best_bm25, said / ideal,
               math.log1p(bm25_rank.get(doc, index.size)), breadth,
               float(evidence.learned.get(doc, False)), float(evidence.facets.get(doc, 0)),
               sum(w for t, w in idf.items() if t in title) / total_idf,
               feedback.get(doc, 0.0) / best_feedback, float(doc in proposed)]
        if meaning is not None:  # only for papers saying none of the words: with a paper that
            # says them, its words decide its place (tests/relevance/test_semantic.py; on the
            # tune topics this costs 0.004 of nDCG@10, README round three)
            row.append(0.0 if said else meaning[doc])
        rows.append(row)
    return docs, rows


def _best(values: Mapping[int, float], k: int) -> set[int]:
    """The ``k`` papers with the highest positive values (ties by paper order)."""
    if k <= 0:
        return set()
    return {d for d in heapq.nsmallest(k, values, key=lambda d: (-values[d], d)) if values[d] > 0}


def admitted(chances: Mapping[int, float], proposed: Collection[int] | None = None,
             ) -> dict[int, float]:
    """The candidates admitted by their probability (``THRESHOLD``): ``KEEP`` and ``FEW`` count
    only the ``proposed`` ones (the facet scoring's; default all), so a paper that merely
    shares a word is shown only when the model finds it probable."""
    own = [d for d in chances if proposed is None or d in proposed]
    if len(own) <= FEW:
        kept = set(own)
    else:
        kept = set(sorted(own, key=lambda d: (-chances[d], d))[:KEEP])
    return {d: p for d, p in chances.items() if d in kept or p >= THRESHOLD}


def _bm25(index: Index, terms: Sequence[str]) -> tuple[dict[int, float], float]:
    """Okapi BM25 of every paper saying one of ``terms`` (any of them), and the most a paper
    could score (every word, saturated): a score over it compares across topics."""
    found: dict[int, float] = {}
    for term in dict.fromkeys(terms):
        for doc, said in _bm25_term(index, term).items():
            found[doc] = found.get(doc, 0.0) + said
    ideal = sum(index.idf(t) for t in dict.fromkeys(terms)) * (K1 + 1)
    return found, ideal or 1.0


def _bm25_term(index: Index, term: str) -> dict[int, float]:
    """One word's BM25 share in every paper saying it; computed once per run, since the topics
    of a run share words ("learning", "network")."""
    found = index.shared("bm25", term)
    if not found and index.df.get(term):
        idf = index.idf(term)
        for doc in index.docs_with(term):
            title, abstract = index.counts[doc]
            tf = title.get(term, 0) + abstract.get(term, 0)
            norm = 1 - B + B * index.lengths[doc] / index.average_length
            found[doc] = idf * tf * (K1 + 1) / (tf + K1 * norm)
    return found


def feedback_terms(index: Index, terms: Sequence[str]) -> list[str]:
    """The words BM25's best papers for ``terms`` share, most telling first (``expand``)."""
    words = _learned_words(index, _bm25(index, terms)[0], terms)
    return sorted(words, key=lambda t: -words[t])


def _learned_words(index: Index, bm25: Mapping[int, float], terms: Sequence[str],
                   ) -> dict[str, float]:
    """The words BM25's FEEDBACK_PAPERS best papers share beyond ``terms`` (``expand``)."""
    top = heapq.nsmallest(expand.FEEDBACK_PAPERS, bm25, key=lambda d: (-bm25[d], d))
    return expand.feedback_words(index, {d: bm25[d] for d in top}, set(terms)) if top else {}


def _feedback(index: Index, words: Mapping[str, float]) -> dict[int, float]:
    """How strongly each paper says the words BM25's best papers share (``_learned_words``):
    what the catalog teaches about a topic whose papers rarely say its words."""
    said: dict[int, float] = {}
    for term, weight in words.items():
        idf = index.idf(term)
        for doc, value in index.saturations(term).items():
            said[doc] = said.get(doc, 0.0) + weight * idf * value
    return said


# -- fitted on the tune topics (benchmarks/relevance/fit.py); do not edit by hand -------------
# BEGIN MODELS
WORDS = Model(
    FEATURES,
    (0.252236, 0.188232, 0.362071, 0.212347, 2.79539, 2.56771, 0.0093985, 0.453008,
     0.0931961, 0.14728, 0.381892),
    (0.391848, 0.28315, 0.229558, 0.165529, 0.936466, 0.840366, 0.0964892, 0.529503,
     0.186563, 0.249727, 0.48585),
    (2.4292, -0.0467493, 0.256182, 0.0983704, 0.285642, -0.462073, 0.146908, -0.0691139,
     0.189879, 0.577833, -0.0227342),
    -1.36253)
WITH_MEANING = Model(
    (*FEATURES, MEANING),
    (0.152181, 0.113979, 0.238707, 0.139893, 3.81163, 2.44334, 0.00732119, 0.277267,
     0.0602719, 0.10727, 0.229585, 0.346333),
    (0.327444, 0.238311, 0.239142, 0.158796, 1.52196, 0.83635, 0.0852502, 0.469749,
     0.151383, 0.208495, 0.420566, 0.731868),
    (1.99633, -0.0853401, -0.0108048, 0.236784, -0.0841571, -0.108068, 0.121679, -0.213617,
     0.145955, 0.517998, -0.00155083, 0.0266871),
    -2.14527)
THRESHOLD = 0.5
# END MODELS
