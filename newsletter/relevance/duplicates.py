"""Near-duplicate papers (a paper and its journal version, "Part I" and "Part II"), and keeping
them from crowding one digest.

How alike two papers are is the cosine of their embeddings when the ranker has them, else the
idf-weighted cosine of their words; :class:`~newsletter.relevance.rank.Ranker` owns one
:class:`Likeness` over its catalog, and the selection asks it through ``Ranker.near_duplicate``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from newsletter.models import Paper

if TYPE_CHECKING:
    from newsletter.relevance.semantic import SemanticIndex

# On the seeds, such pairs score >= 0.85 / 0.73 (embeddings / words), and the most alike distinct
# papers 0.83 / 0.68 (two differentiable causal discovery papers).
DUPLICATE_SEMANTIC = 0.85
DUPLICATE_LEXICAL = 0.7
# Memory stays flat however many digests a run composes: ~40,000 pairs come up for 10,000
# subscribers on a 50,000-paper catalog; past the bound the memo starts again.
_MAX_PAIRS = 50_000


class Likeness:
    """Pairwise likeness of the papers of one catalog, by index, 0..1. Memoized per pair:
    subscribers share topics, so the same pairs come up for many of them."""

    def __init__(self, fields: Sequence[Sequence[Sequence[str]]], idf: Callable[[str], float],
                 semantic: SemanticIndex | None = None) -> None:
        self._fields = fields  # per paper: its fields' terms (title, abstract)
        self._idf = idf
        self._semantic = semantic  # row i of its vectors is paper i, unit length
        self.threshold = DUPLICATE_SEMANTIC if semantic is not None else DUPLICATE_LEXICAL
        self._unit: dict[int, dict[str, float]] = {}
        self._pairs: dict[tuple[int, int], float] = {}
        self._verdicts: dict[int, bool] = {}
        self._size = len(fields) + 1

    def __call__(self, a: int, b: int) -> float:
        i, j = sorted((a, b))
        alike = self._pairs.get((i, j))
        if alike is None:
            if len(self._pairs) > _MAX_PAIRS:
                self._pairs.clear()
            if self._semantic is not None:
                vectors = self._semantic.vectors
                alike = float(vectors[i] @ vectors[j])
            else:
                u, v = self._unit_vector(i), self._unit_vector(j)
                # only the shared words add to the cosine; their set is found in C
                alike = sum(u[t] * v[t] for t in u.keys() & v.keys())
            self._pairs[i, j] = alike
        return alike

    def alike(self, a: int, b: int) -> bool:
        """Whether two papers are near-duplicates. The verdict is memoized per pair under one
        integer key: a run of thousands of digests asks about the same pairs again and again,
        and this is the hot path of ``select`` (one check per candidate and paper kept)."""
        key = a * self._size + b if a < b else b * self._size + a
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) > _MAX_PAIRS:
                self._verdicts.clear()
            verdict = self._verdicts[key] = self(a, b) >= self.threshold
        return verdict

    def _unit_vector(self, doc: int) -> dict[str, float]:
        vector = self._unit.get(doc)
        if vector is None:
            counts = Counter(term for field in self._fields[doc] for term in field)
            weights = {t: n * self._idf(t) for t, n in counts.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            vector = self._unit[doc] = {t: w / norm for t, w in weights.items()}
        return vector


class _HasPaper(Protocol):
    @property
    def paper(self) -> Paper: ...


T = TypeVar("T", bound=_HasPaper)


def diversify(items: Iterable[T], k: int, similarity: Callable[[Paper, Paper], float],
              threshold: float) -> list[T]:
    """The first ``k`` of ``items`` (in their order) that are not near-duplicates of one already
    taken: ``similarity(a, b) >= threshold``. Works on Matches and DigestItems alike."""
    taken: list[T] = []
    for item in items:
        if len(taken) >= k:
            break
        if all(similarity(item.paper, kept.paper) < threshold for kept in taken):
            taken.append(item)
    return taken
