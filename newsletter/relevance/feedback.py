"""A reader's taste, learned from what they told us: "More like this", "Less like this" and
their own papers (:class:`~newsletter.models.ReaderSignals`), blended with the topic ranking.

The model is Rocchio's (Rocchio, "Relevance feedback in information retrieval", 1971) over the
ranker's own paper vectors: the reader's liked and own papers make a positive centroid, the
hidden ones a negative centroid, each the normalized mean of unit tf-idf vectors
(``Ranker.term_vector``), and of the sentence embeddings too when the ranker has them. A
candidate's topic score is multiplied by ``1 + like * pull - hide * push`` (``pull``, ``push``:
its cosines with the two centroids), so a topic still decides what is relevant and the reader
decides the order among its papers. A hidden paper never comes back, nor its near-duplicates.

"Like papers you saved": the nearest catalog papers of each liked or own paper (found once per
run per paper, shared by every reader who liked it), close enough to it (``Knobs.saved_min``),
each with the title it is like as its reason.

Cost: everything per paper (vectors, neighbours, a hidden paper's near-duplicates) is memoized
on the ranker, once per run; per reader, two truncated centroids and two sparse dot products per
candidate, over the first ``Knobs.depth`` candidates of each topic only.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from newsletter.models import Paper, ReaderSignals
from newsletter.relevance.vectors import PaperVectors, Sparse, blend, dense_dot, dot


@dataclass(frozen=True, slots=True)
class Knobs:
    """Tuned on the dev topics only (benchmarks/relevance/feedback_sim.py)."""

    # Frozen on the dev topics, 5 cuts (feedback_sim.py; README "Feedback"). Re-ordering within a
    # topic barely moves nDCG there (the topic ranking is already good at the top), and a
    # stronger push hurt topics whose near-misses the simulated reader hid: both kept small.
    like: float = 0.1  # how far closeness to liked and own papers lifts a topic score
    hide: float = 0.1  # how far closeness to hidden papers lowers it
    dense_share: float = 0.5  # with embeddings: their share of a closeness, words the rest
    depth: int = 15  # per topic, the candidates the reader's model re-orders (speed)
    centroid_terms: int = 24  # a centroid keeps its heaviest words only (speed)
    saved_min: float = 0.05  # closeness to a liked or own paper to be "like" it
    saved_slots: int = 5  # at most this many, in places the topics leave free
    neighbours: int = 40  # per liked or own paper, the nearest papers kept


DEFAULT_KNOBS = Knobs()
SAVED_TOPIC = "Like papers you saved"
MAX_SIGNALS = 200



@dataclass(frozen=True, slots=True)
class Saved:
    paper: Paper
    closeness: float
    like: str  # the title of the liked or own paper it is like


class ReaderModel:
    """One reader's Rocchio profile, built per digest from their signals."""

    def __init__(self, vectors: PaperVectors, signals: ReaderSignals,
                 knobs: Knobs = DEFAULT_KNOBS) -> None:
        self.vectors, self.knobs = vectors, knobs
        # The latest MAX_SIGNALS of each kind: a whole Zotero library would cost a digest
        # its time budget and says no more about a taste than its last few hundred papers.
        found = (vectors.paper(pid) for pid in signals.liked[-MAX_SIGNALS:])
        own = [p for p in map(vectors.own_paper, signals.own[-MAX_SIGNALS:]) if p is not None]
        self.positive = _unique([p for p in (*found, *own) if p is not None])
        self.negative = _unique([p for p in map(vectors.paper, signals.hidden[-MAX_SIGNALS:])
                                 if p is not None])
        # Their own papers and the ones they liked already are theirs: never suggested.
        self.hidden = frozenset(signals.hidden).union(
            signals.liked, (p.id for p in own),
            *(vectors.twins(p, knobs) for p in self.negative))
        self._pull = _Centroid(vectors, self.positive, knobs)
        self._push = _Centroid(vectors, self.negative, knobs)

    def is_hidden(self, paper_id: str) -> bool:
        """Hidden by the reader, a near-duplicate of a paper they hid, or their own."""
        return paper_id in self.hidden

    def factor(self, paper: Paper) -> float:
        """What the reader's taste multiplies a topic score by: above 1 for papers like the
        ones they liked or wrote, below for papers like the ones they hid."""
        k = self.knobs
        return max(0.05, 1.0 + k.like * self._pull(paper) - k.hide * self._push(paper))

    def saved(self, limit: int, skip: Callable[[str], bool]) -> list[Saved]:
        """Up to ``limit`` catalog papers like a liked or own paper, closest first."""
        if limit <= 0 or not self.positive:
            return []
        best: dict[str, Saved] = {}
        vectors, knobs = self.vectors, self.knobs
        for liked in self.positive:
            for closeness, pid in vectors.neighbours(liked, knobs):
                if closeness < knobs.saved_min:
                    break
                held = best.get(pid)
                if held is None or closeness > held.closeness:
                    paper = vectors.paper(pid)
                    if paper is not None:
                        best[pid] = Saved(paper, closeness, liked.title)
        found: list[Saved] = []
        for s in sorted(best.values(), key=lambda s: (-s.closeness, s.paper.id)):
            if len(found) >= limit * 3:  # room for the caller's near-duplicate checks
                break
            pid = s.paper.id
            if not (skip(pid) or self.is_hidden(pid)) and self._push(s.paper) < self._pull(
                    s.paper):
                found.append(s)
        return found


class _Centroid:
    """The normalized mean of some papers' unit vectors, words truncated to the heaviest."""

    def __init__(self, vectors: PaperVectors, papers: Sequence[Paper], knobs: Knobs) -> None:
        self.vectors, self.share = vectors, knobs.dense_share
        self.sparse: Sparse = {}
        self.dense: Any = None
        self._memo: dict[str, float] = {}
        if not papers:
            return
        total: dict[str, float] = {}
        for paper in papers:  # each paper's heaviest words: the centroid keeps only those
            for term, weight in vectors.heavy(paper, 2 * knobs.centroid_terms):
                total[term] = total.get(term, 0.0) + weight
        kept = heapq.nlargest(knobs.centroid_terms, total.items(), key=lambda tw: tw[1])
        norm = math.sqrt(sum(w * w for _, w in kept)) or 1.0
        self.sparse = {t: w / norm for t, w in kept}
        dense = [d for d in (vectors.dense(p) for p in papers) if d is not None]
        if dense:
            mean = sum(dense[1:], dense[0].copy())
            size = float((mean @ mean) ** 0.5) or 1.0
            self.dense = mean / size

    def __call__(self, paper: Paper) -> float:
        if not self.sparse:
            return 0.0
        found = self._memo.get(paper.id)
        if found is None:
            vectors = self.vectors
            found = self._memo[paper.id] = blend(
                dot(self.sparse, vectors.sparse(paper)),
                dense_dot(self.dense, vectors.dense(paper)), self.share)
        return found



def _unique(papers: Sequence[Paper]) -> list[Paper]:
    return list({p.id: p for p in papers}.values())
