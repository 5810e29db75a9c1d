"""Papers as vectors, shared by every reader of a run: each paper's unit tf-idf vector (the
ranker's, ``Ranker.term_vector``) and embedding when the ranker has them, its nearest catalog
papers and its near-duplicates, memoized per ranker. ``feedback.ReaderModel`` reads a reader's
taste through them.

Neighbours are found from the paper's heaviest words' postings (rarest first, a bounded scan),
never by comparing with the whole catalog.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from newsletter.catalog.sources.ids import short_hash, title_key
from newsletter.models import OwnPaper, Paper
from newsletter.relevance.rank import Ranker

if TYPE_CHECKING:
    from newsletter.relevance.feedback import Knobs

Sparse = dict[str, float]
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
        return blend(dot(self.sparse(a), self.sparse(b)),
                      dense_dot(self.dense(a), self.dense(b)), dense_share)

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
            scored.append((blend(words, dense_dot(mine, self.dense(other)),
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


def _bound(memo: dict[Any, Any]) -> None:
    """Memory stays flat however many readers a long run sees: past MEMO_KEPT entries a memo
    starts again (a cost in time, never a wrong answer)."""
    if len(memo) >= MEMO_KEPT:
        memo.clear()


def blend(words: float, meaning: float | None, dense_share: float) -> float:
    return words if meaning is None else (1 - dense_share) * words + dense_share * meaning


def dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    get = b.get
    return sum(w * get(t, 0.0) for t, w in a.items())


def dense_dot(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(a @ b)
