"""Which of a topic's matches are relevant, as a probability learned from judged topics.

The facet scores of ``topic.TopicScorer`` say how much of a topic's words a paper carries; on
topics nobody tuned them for they ordered papers no better than textbook BM25, and a fixed
share of the best score admitted too much for broad topics and too little for narrow ones
(benchmarks/relevance/README.md, issue 13). Here each candidate paper of a topic is described by
a few numbers that compare across topics (its facet score, absolute and relative to the topic's
best, its BM25 score over the topic's words, both ranks, the words the topic's BM25 best
papers share, how broad the topic is in this catalog, with embeddings its closeness in meaning)
and a logistic model turns them into the probability that a person would judge it relevant.
The candidates are the papers whose facet score reaches ``Weights.admit`` (the model was fitted
on those only); they are ordered by that probability and admitted when it reaches
``THRESHOLD``, calibrated on judged topics, not a share of the topic's best.

The coefficients were fitted on the 61 dev topics only (``benchmarks/relevance/fit.py``, which
rewrites the block between the markers below) and frozen before the test-B topics were scored.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newsletter.relevance import expand
from newsletter.relevance.index import Index

BROAD = 0.2  # a facet score this high counts the paper in the topic's breadth
K1, B = 1.2, 0.75  # textbook BM25 over title and abstract as one field
FEATURES = ("facet", "facet_share", "bm25_share", "bm25_idf", "bm25_rank", "breadth",
            "learned", "facets", "title_idf", "feedback")
MEANING = "meaning"  # the extra feature with embeddings: cosine as a z-score over the catalog
# A topic the catalog says something about always yields its best matches: the KEEP most
# probable candidates, and every candidate when there are at most FEW (a small catalog, a
# narrow topic). Cross-validated on the dev topics this costs 0.002 of precision (README).
KEEP = 3
FEW = 5


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
               meaning: Sequence[float] | None = None,
               ) -> tuple[list[int], list[list[float]]]:
    """The topic's candidate papers (facet score at least ``admit``) and their features, in
    FEATURES order (plus MEANING when ``meaning`` z-scores are given)."""
    scores = evidence.scores
    docs = sorted(d for d, s in scores.items() if s >= admit)
    if not docs:
        return [], []
    bm25, ideal = _bm25(index, terms)
    ascending = sorted(bm25.values())
    # A paper's rank: how many papers score more (equal scores share a rank, so identical
    # papers get one chance); a paper without the words ranks past the catalog.
    bm25_rank = {d: len(ascending) - bisect_right(ascending, bm25[d]) for d in docs if d in bm25}
    top = heapq.nsmallest(expand.FEEDBACK_PAPERS, bm25, key=lambda d: (-bm25[d], d))
    feedback = _feedback(index, {d: bm25[d] for d in top}, terms)
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
        row = [scores[doc], scores[doc] / best, said / best_bm25, said / ideal,
               math.log1p(bm25_rank.get(doc, index.size)), breadth,
               float(evidence.learned.get(doc, False)), float(evidence.facets.get(doc, 0)),
               sum(w for t, w in idf.items() if t in title) / total_idf,
               feedback.get(doc, 0.0) / best_feedback]
        if meaning is not None:
            row.append(meaning[doc])
        rows.append(row)
    return docs, rows


def admitted(chances: Mapping[int, float]) -> dict[int, float]:
    """The candidates admitted by their probability (``THRESHOLD``, ``KEEP``, ``FEW``)."""
    if len(chances) <= FEW:
        return dict(chances)
    ranked = sorted(chances, key=lambda d: (-chances[d], d))
    return {d: chances[d] for i, d in enumerate(ranked) if i < KEEP or chances[d] >= THRESHOLD}


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


def _feedback(index: Index, best: Mapping[int, float], terms: Sequence[str]) -> dict[int, float]:
    """How strongly each paper says the words BM25's best papers share (``expand``): what the
    catalog teaches about a topic whose papers rarely say its words."""
    words = expand.feedback_words(index, best, set(terms)) if best else {}
    said: dict[int, float] = {}
    for term, weight in words.items():
        idf = index.idf(term)
        saturated = index.shared("saturated", term)  # shared by the run's topics
        if not saturated:
            saturated.update((doc, index.saturated(doc, term)) for doc in index.docs_with(term))
        for doc, value in saturated.items():
            said[doc] = said.get(doc, 0.0) + weight * idf * value
    return said


# -- fitted on the dev topics (benchmarks/relevance/fit.py); do not edit by hand -------------
# BEGIN MODELS
WORDS = Model(
    FEATURES,
    (0.671715, 0.49002, 0.518768, 0.28749, 2.42248, 3.16671, 0.0204778, 1.03982, 0.153277,
     0.293558),
    (0.406272, 0.273555, 0.253343, 0.205931, 1.24686, 0.794601, 0.141628, 0.206841,
     0.240437, 0.321463),
    (2.29678, 0.278462, -0.29787, 0.612516, 0.260367, -0.331975, 0.251984, 0.256196,
     -0.11518, 0.480096),
    1.36716)
WITH_MEANING = Model(
    (*FEATURES, MEANING),
    (0.669804, 0.490063, 0.518097, 0.286958, 2.42357, 3.16015, 0.0203851, 1.03964,
     0.152583, 0.294298, 1.88637),
    (0.406347, 0.273728, 0.253599, 0.205729, 1.25106, 0.799174, 0.141313, 0.206389,
     0.240113, 0.321659, 1.38493),
    (2.24842, 0.19861, -0.404299, 0.755679, 0.285654, -0.233613, 0.255148, 0.246655,
     -0.227679, 0.423689, 0.515673),
    1.39453)
THRESHOLD = 0.5
# END MODELS
