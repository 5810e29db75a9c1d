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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from newsletter.catalog.sources.ids import short_hash, title_key
from newsletter.models import OwnPaper, Paper, ReaderSignals
from newsletter.relevance.rank import Ranker

Sparse = dict[str, float]


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
MEMO_KEPT = 50_000  # per memo of paper vectors or neighbours (see _bound)
_SEEDS = 12  # a paper's heaviest words whose postings propose its neighbours
_SCAN_BUDGET = 4000  # postings read per neighbour search (rarest words first)
_PROPOSED = 40  # proposals scored, per neighbour search
_NEIGHBOUR_TERMS = 32  # the paper's heaviest words a neighbour's closeness is counted on
_TWIN_TERMS = 5  # a near-duplicate holds two of a paper's five rarest words


class PaperVectors:
    """Per ranker (so per run): each paper's unit term vector and embedding, its nearest
    catalog papers and its near-duplicates; for catalog papers and for papers outside the
    ranker's window the caller made known (``know``), such as liked papers of past weeks."""

    def __init__(self, ranker: Ranker) -> None:
        self.ranker = ranker
        self.extra: dict[str, Paper] = {}
        self._sparse: dict[str, Sparse] = {}
        self._heavy: dict[tuple[str, int], list[tuple[str, float]]] = {}
        self._dense: dict[str, Any] = {}
        self._own: dict[tuple[str, str, str], Paper] = {}
        self._neighbours: dict[tuple[str, Knobs], list[tuple[float, str]]] = {}
        self._twins: dict[tuple[str, Knobs], frozenset[str]] = {}
        self._titles: dict[str, Paper] | None = None

    def know(self, papers: Iterable[Paper]) -> None:
        for paper in papers:
            if paper.id not in self.ranker.index.doc_of:
                self.extra.setdefault(paper.id, paper)

    def paper(self, paper_id: str) -> Paper | None:
        doc = self.ranker.index.doc_of.get(paper_id)
        return self.ranker.papers[doc] if doc is not None else self.extra.get(paper_id)

    def own_paper(self, own: OwnPaper) -> Paper | None:
        """The catalog paper an own paper was matched to, else a paper made of its text."""
        found = self._match(own)
        if found is not None:
            return found
        if not (own.title or own.abstract):
            return None
        key = (own.key, own.title, own.abstract)
        made = self._own.get(key)
        if made is None:
            # Two readers' "smith2020" may be two papers: the id says which text it is.
            made = self._own[key] = Paper(id=f"own:{short_hash('|'.join(key))}", title=own.title,
                                          abstract=own.abstract)
        return made

    def _match(self, own: OwnPaper) -> Paper | None:
        """The catalog paper of an own paper: as stored, else by arXiv id (a paper's id when
        it has one), else by title (the window's titles, indexed once a run)."""
        for pid in (own.paper_id, own.key.removeprefix("arxiv:") if own.key.startswith(
                "arxiv:") else None):
            found = self.paper(pid) if pid else None
            if found is not None:
                return found
        if not own.title:
            return None
        if self._titles is None:
            self._titles = {}
            for paper in self.ranker.papers:
                self._titles.setdefault(title_key(paper.title), paper)
        return self._titles.get(title_key(own.title))

    def sparse(self, paper: Paper) -> Sparse:
        vector = self._sparse.get(paper.id)
        if vector is None:
            _bound(self._sparse)
            vector = self._sparse[paper.id] = self.ranker.term_vector(paper)
        return vector

    def heavy(self, paper: Paper, size: int) -> list[tuple[str, float]]:
        """The ``size`` heaviest words of the paper's vector, with their weights."""
        key = (paper.id, size)
        found = self._heavy.get(key)
        if found is None:
            _bound(self._heavy)
            found = self._heavy[key] = heapq.nlargest(size, self.sparse(paper).items(),
                                                      key=lambda tw: tw[1])
        return found

    def dense(self, paper: Paper) -> Any:
        if self.ranker.semantic is None:
            return None
        if paper.id not in self._dense:
            _bound(self._dense)
            self._dense[paper.id] = self.ranker.dense_vector(paper)
        return self._dense[paper.id]

    def closeness(self, a: Paper, b: Paper, dense_share: float) -> float:
        return _blend(_dot(self.sparse(a), self.sparse(b)),
                      _dense_dot(self.dense(a), self.dense(b)), dense_share)

    def neighbours(self, paper: Paper, knobs: Knobs) -> list[tuple[float, str]]:
        """The catalog papers nearest ``paper`` (closeness, id), best first, itself left out."""
        key = (paper.id, knobs)
        found = self._neighbours.get(key)
        if found is None:
            _bound(self._neighbours)
            found = self._neighbours[key] = self._search(paper, knobs)
        return found

    def twins(self, paper: Paper, knobs: Knobs) -> frozenset[str]:
        """Ids of ``paper``'s near-duplicates in the catalog, by the ranker's own measure.
        A near-duplicate shares most of a paper's rarest words: only the papers holding two
        of its five rarest are asked, so this costs a few short postings lists."""
        key = (paper.id, knobs)
        found = self._twins.get(key)
        if found is None:
            _bound(self._twins)
            ranker, index = self.ranker, self.ranker.index
            rarest = heapq.nsmallest(_TWIN_TERMS, (t for t in self.sparse(paper) if t in index.df),
                                     key=index.df.__getitem__)
            seen: dict[int, int] = {}
            for term in rarest:
                for doc in index.docs_with(term):
                    seen[doc] = seen.get(doc, 0) + 1
            need = min(2, len(rarest))
            near = [index.papers[d] for d, n in seen.items() if n >= need]
            if paper.id in index.doc_of:
                found = frozenset(p.id for p in near
                                  if p.id != paper.id and ranker.near_duplicate(paper, p))
            else:  # outside the window: the same threshold on our own closeness
                share = 1.0 if ranker.semantic is not None else 0.0
                found = frozenset(p.id for p in near if self.closeness(paper, p, share)
                                  >= ranker.duplicate_threshold)
            self._twins[key] = found
        return found

    def _search(self, paper: Paper, knobs: Knobs) -> list[tuple[float, str]]:
        """Papers that share the paper's heaviest words are proposed (rarest words first, a
        bounded number of postings read), the best proposals scored exactly."""
        index = self.ranker.index
        vector = self.sparse(paper)
        proposals: dict[int, float] = {}
        budget = _SCAN_BUDGET
        seeds = heapq.nlargest(_SEEDS, vector.items(), key=lambda tw: tw[1])
        for term, weight in sorted(seeds, key=lambda tw: index.df.get(tw[0], 0)):
            docs = index.docs_with(term)
            if proposals and len(docs) > budget:
                break
            budget -= len(docs)
            gain = weight * index.idf(term)
            for doc in docs:
                proposals[doc] = proposals.get(doc, 0.0) + gain
        dense = self.dense(paper)
        if dense is not None:  # every paper by meaning: one matrix product per paper a run
            sims = self.ranker.semantic.vectors @ dense
            for doc in sims.argsort()[::-1][:_PROPOSED]:
                proposals.setdefault(int(doc), 0.0)
        if paper.id in index.doc_of:
            proposals.pop(index.doc_of[paper.id], None)  # a paper is not its own neighbour
        best = heapq.nlargest(_PROPOSED, proposals.items(), key=lambda dw: dw[1])
        # Closeness over the paper's heaviest words: the rest weigh little in a cosine.
        heavy, mine = self.heavy(paper, _NEIGHBOUR_TERMS), self.dense(paper)
        scored = []
        for doc, _ in best:
            other = index.papers[doc]
            words = sum(w * self.sparse(other).get(t, 0.0) for t, w in heavy)
            scored.append((_blend(words, _dense_dot(mine, self.dense(other)),
                                  knobs.dense_share), other.id))
        scored.sort(key=lambda sp: (-sp[0], sp[1]))
        return scored[:knobs.neighbours]


_VECTORS: WeakKeyDictionary[Ranker, PaperVectors] = WeakKeyDictionary()


def vectors_for(ranker: Ranker) -> PaperVectors:
    """The ranker's shared paper vectors: computed once per run, for every reader."""
    found = _VECTORS.get(ranker)
    if found is None:
        found = _VECTORS[ranker] = PaperVectors(ranker)
    return found


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
            found = self._memo[paper.id] = _blend(
                _dot(self.sparse, vectors.sparse(paper)),
                _dense_dot(self.dense, vectors.dense(paper)), self.share)
        return found


def _bound(memo: dict[Any, Any]) -> None:
    """Memory stays flat however many readers a long run sees: past MEMO_KEPT entries a memo
    starts again (a cost in time, never a wrong answer)."""
    if len(memo) >= MEMO_KEPT:
        memo.clear()


def _blend(words: float, meaning: float | None, dense_share: float) -> float:
    return words if meaning is None else (1 - dense_share) * words + dense_share * meaning


def _dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    get = b.get
    return sum(w * get(t, 0.0) for t, w in a.items())


def _dense_dot(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(a @ b)


def _unique(papers: Sequence[Paper]) -> list[Paper]:
    return list({p.id: p for p in papers}.values())
