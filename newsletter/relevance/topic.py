"""One topic scored over the catalog: facets, qualifiers, learned words, meaning, admission.

``TopicScorer.score`` returns the admitted papers of a topic, best first, each with its score
and reason. The Ranker memoizes the result per understood query.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.relevance import calibrate, expand
from newsletter.relevance.index import Index
from newsletter.relevance.query import Facet, Pairs, Query, parse
from newsletter.relevance.reasons import Reason, facet_reason, widened_reason
from newsletter.relevance.score import Bag, Evidence, Weights, best
from newsletter.relevance.text import Vocabulary, query_text

if TYPE_CHECKING:
    from newsletter.relevance.semantic import SemanticIndex

QUALIFIER_SAID = 0.4  # a qualifier's score (one mention in an abstract ~0.45) that counts fully


@dataclass(frozen=True, slots=True)
class Hit:
    doc: int
    score: float
    reason: Reason  # named for each reader's spelling by ``Ranker.rank``


@dataclass(frozen=True, slots=True)
class _Facet:
    """A facet's evidence on one paper."""

    score: float
    evidence: Evidence
    qualifier: str  # the qualifier the paper also says, "" if none
    learned: tuple[str, ...]  # learned words that carried the match, when they did


class TopicScorer:
    def __init__(self, index: Index, vocabulary: Vocabulary, weights: Weights,
                 semantic: SemanticIndex | None = None) -> None:
        self.index = index
        self.vocabulary = vocabulary
        self.w = weights
        self.semantic = semantic
        # The most a paper's base evidence can be multiplied by; candidates below
        # admit / lift cannot be admitted however they are boosted.
        lift = 1 + weights.title
        self.floor = weights.admit / lift

    def understand(self, topic: str) -> Query:
        query = parse(topic, self.vocabulary, self._generic, self._common)
        return Query(query.topic, tuple(
            Facet(f.label, self._spelled(f.words), tuple(self._spelled(q) for q in f.qualifiers))
            for f in query.facets))

    def _generic(self, terms: Sequence[str]) -> bool:
        """Whether a phrase says little in this catalog: each of its words is in a large share
        of the papers ("deep learning"). A named concept is never generic, however many
        papers name it ("GNN" in a catalog of graph papers)."""
        if not terms or self.vocabulary.knows(terms):
            return False
        size = max(self.index.size, 1)
        return all(self.index.df.get(t, 0) / size >= self.w.generic_share for t in terms)

    def _common(self, terms: Sequence[str]) -> bool:
        """Whether a generic phrase is also said, word for word, by a large share of the
        papers: "deep learning" is, "learning to optimize" and "one-class classification"
        (common words naming one thing) are not."""
        return (len(terms) == 1 or
                self.index.phrase_share(tuple(terms)) >= self.w.generic_share)

    def _spelled(self, words: Pairs) -> Pairs:
        return tuple((word, expand.correct(self.index, stem, word) or stem)
                     for word, stem in words)

    def score(self, query: Query) -> tuple[Hit, ...]:
        """The topic's relevant papers, most probably relevant first (``calibrate``)."""
        facets, evidence, which = self._evidence(query)
        if not evidence.scores or max(evidence.scores.values()) < self.w.admit:
            return ()  # nothing says enough of the topic: nothing relevant, no email
        docs, rows = self._candidates(query, evidence)
        model = calibrate.WITH_MEANING if self.semantic is not None else calibrate.WORDS
        chances = {doc: model.probability(row) for doc, row in zip(docs, rows)}
        admitted = calibrate.admitted(
            chances, {d for d in docs if evidence.scores.get(d, 0.0) >= self.w.admit})
        quotes = self._quotes(query, facets, {d: which[d] for d in admitted if d in which})
        hits = [Hit(doc, chance, self._reason(query, facets, which, doc, quotes.get(doc, "")))
                for doc, chance in admitted.items()]
        return tuple(sorted(hits, key=self._order))

    def _reason(self, query: Query, facets: list[dict[int, _Facet]], which: dict[int, int],
                doc: int, quote: str) -> Reason:
        if doc not in which:  # a widened candidate (calibrate.WIDEN)
            return widened_reason(self.index, query.topic, self._terms(query), doc, self.semantic)
        found = facets[which[doc]][doc]
        return facet_reason(query.facets[which[doc]], which[doc], found.evidence, found.learned,
                            found.qualifier, quote)

    def candidates(self, query: Query) -> tuple[list[int], list[list[float]], dict[int, float]]:
        """The topic's candidate papers, their features and facet scores, before the model:
        what ``benchmarks/relevance/fit.py`` fits the model on."""
        _, evidence, _ = self._evidence(query)
        docs, rows = self._candidates(query, evidence)
        return docs, rows, dict(evidence.scores)

    def _evidence(self, query: Query,
                  ) -> tuple[list[dict[int, _Facet]], calibrate.Evidence, dict[int, int]]:
        """Each facet's papers; per paper its best facet plus ``other_facets`` of the others,
        whether learned words carried it, how many facets it matches, and its best facet."""
        facets = [self._facet(f, alone=len(query.facets) == 1) for f in query.facets]
        scores: dict[int, float] = {}
        learned: dict[int, bool] = {}
        count: dict[int, int] = {}
        which: dict[int, int] = {}
        for doc in set().union(*facets) if facets else ():
            ranked = sorted(((f[doc].score, i) for i, f in enumerate(facets) if doc in f),
                            reverse=True)
            top, which[doc] = ranked[0]
            scores[doc] = top + self.w.other_facets * sum(s for s, _ in ranked[1:])
            best_facet = facets[which[doc]][doc]
            learned[doc] = bool(best_facet.learned) or best_facet.evidence.field == ""
            count[doc] = len(ranked)
        return facets, calibrate.Evidence(scores, learned, count), which

    def _candidates(self, query: Query, evidence: calibrate.Evidence,
                    ) -> tuple[list[int], list[list[float]]]:
        meaning = self._meaning(query) if self.semantic is not None else None
        return calibrate.candidates(self.index, evidence, self._terms(query), self.w.admit,
                                    meaning)

    def _terms(self, query: Query) -> list[str]:
        """The topic's words and every vocabulary way of saying them ("PINN" and
        "physics-informed neural network"), qualifiers included: one BM25 query."""
        return [t for f in query.facets for words in (f.words, *f.qualifiers)
                for bag in self._bags(words) for t in bag.weights]

    def _meaning(self, query: Query) -> list[float]:
        """Per paper, its closeness in meaning to the closest facet: the cosine as a z-score
        against the whole catalog (cosines of different topics do not compare)."""
        import numpy as np

        assert self.semantic is not None
        closest = None
        for facet in query.facets:
            cosine = np.asarray(self.semantic.similarities([self._text(facet)]))
            z = (cosine - float(cosine.mean())) / (float(cosine.std()) or 1.0)
            closest = z if closest is None else np.maximum(closest, z)
        return closest.tolist() if closest is not None else [0.0] * self.index.size

    def _quotes(self, query: Query, facets: list[dict[int, _Facet]],
                admitted: dict[int, int]) -> dict[int, str]:
        """For papers admitted by meaning alone, the sentence closest to their facet: the part
        of the reason a person can check."""
        if self.semantic is None:
            return {}
        quotes: dict[int, str] = {}
        for i, facet in enumerate(query.facets):
            docs = [d for d, k in admitted.items()
                    if k == i and facets[i][d].evidence.field == "meaning"]
            if docs:
                quotes.update(self.semantic.closest_sentences(docs, [self._text(facet)]))
        return quotes

    def _text(self, facet: Facet) -> str:
        """The facet as an embedding query: its words and the vocabulary's ways of saying them
        ("INR (implicit neural representation, neural field)")."""
        labels = [v.label for v in self.vocabulary.variants(facet.words)]
        return query_text(facet.label, labels)

    def _order(self, hit: Hit) -> tuple[float, int, str]:
        paper = self.index.papers[hit.doc]
        return (-hit.score, -(paper.published.toordinal() if paper.published else 0), paper.id)

    def _bags(self, words: Pairs) -> list[Bag]:
        bags = []
        own = tuple(stem for _, stem in words)
        for variant in self.vocabulary.variants(words):
            mine = tuple(t for p in variant.phrases for t in p) == own
            bags.append(Bag(self.index, variant.phrases, variant.label, own=mine,
                            strict=variant.strict))
            joined = tuple(self._joined(p) for p in variant.phrases)
            if joined != variant.phrases:  # "bilevel" for "bi-level", and the reverse
                bags.append(Bag(self.index, joined, variant.label, own=mine,
                                strict=variant.strict))
        return bags

    def _joined(self, phrase: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for term in phrase:
            if out and self.index.df.get(out[-1] + term, 0) >= 2:
                out[-1] += term
            else:
                out.append(term)
        return tuple(out)

    def _facet(self, facet: Facet, alone: bool = False) -> dict[int, _Facet]:
        """A facet's papers. ``alone``: the topic has no other facet, so a paper whose words
        cannot reach ``relative`` of the best one is never admitted: such papers are looked
        at only if learned words or meaning could still lift them (exactly the same result,
        at a fraction of the cost on a large catalog)."""
        index, w = self.index, self.w
        bags = self._bags(facet.words)
        qualifiers = [(_label(q), self._bags(q)) for q in facet.qualifiers]
        found: dict[int, _Facet] = {}
        candidates = set().union(*(bag.candidates(index, self.floor) for bag in bags))
        bases = [bag.bases(index) for bag in bags]
        lift = 1 + w.title
        bounds = {d: max([b.get(d, 0.0) for b in bases]) * lift for d in candidates}
        pending: set[int] = set()
        top: list[float] = []  # the best FEEDBACK_PAPERS scores that reach `admit`, a min-heap
        best_score = 0.0
        for doc in sorted(candidates, key=lambda d: (-bounds[d], d)):
            bound = bounds[doc]
            if bound < self.floor:
                break
            if alone and bound < w.relative * best_score and (
                    bound < w.admit or (len(top) >= expand.FEEDBACK_PAPERS and bound <= top[0])):
                pending.add(doc)  # cannot be admitted, nor teach words, by its words alone
                continue
            if all(bag.reach(index, doc, w) < self.floor for bag in bags):
                continue  # its words are too scattered: judged, it would not be found
            held = self._judge(doc, bags, qualifiers)
            if held is None:
                continue
            found[doc] = held
            best_score = max(best_score, held.score)
            if held.score >= w.admit:
                heapq.heappush(top, held.score)
                if len(top) > expand.FEEDBACK_PAPERS:
                    heapq.heappop(top)
        resolve = _Lazy(found, pending, lambda d: self._judge(d, bags, qualifiers))
        found = self._learn(found, bags, qualifiers, resolve)
        return self._mean(found, facet, resolve) if self.semantic is not None else found

    def _judge(self, doc: int, bags: list[Bag], qualifiers: list[tuple[str, list[Bag]]],
               ) -> _Facet | None:
        index, w = self.index, self.w
        evidence = best(bags, index, doc, w, self.floor)
        if evidence.score < self.floor:
            return None
        # A qualifier is a boost, not a gate: a paper without it keeps 1 - qualifier of its
        # score; one that says it (an abstract mention is enough) keeps all.
        said = max(((min(best(qb, index, doc, w).score / QUALIFIER_SAID, 1.0), label)
                    for label, qb in qualifiers), default=(1.0, ""))
        return _Facet(evidence.score * (1 - w.qualifier * (1 - said[0])), evidence,
                      said[1] if said[0] and qualifiers else "", ())

    def _mean(self, found: dict[int, _Facet], facet: Facet, resolve: _Lazy,
              ) -> dict[int, _Facet]:
        """Admit papers close in meaning to the facet that say none of its words. Closeness is
        the cosine as a z-score against the whole catalog (cosines of different topics do not
        compare; their spread does), mapped to 0..1 between ``meaning_low`` and ``_high``."""
        import numpy as np

        assert self.semantic is not None
        w = self.w
        cosine = np.asarray(self.semantic.similarities([self._text(facet)]))
        spread = float(cosine.std()) or 1.0
        z = (cosine - float(cosine.mean())) / spread
        meaning = np.clip((z - w.meaning_low) / (w.meaning_high - w.meaning_low), 0.0, 1.0)
        # Only papers that say none of the words gain: on the dev topics, meaning added to a
        # match by words, or scaling it, ranked worse (benchmarks/relevance/README.md).
        grown = dict(found)
        for doc in np.flatnonzero(meaning > 0).tolist():
            alone = w.meaning_alone * float(meaning[doc])
            if doc not in found and alone >= self.floor and resolve(doc) is None:
                grown[doc] = _Facet(alone, Evidence(alone, "", "meaning"), "", ())
        return grown

    def _learn(self, found: dict[int, _Facet], bags: list[Bag],
               qualifiers: list[tuple[str, list[Bag]]], resolve: _Lazy) -> dict[int, _Facet]:
        """Add the words the facet's best matches share (``expand.feedback_words``)."""
        index, w = self.index, self.w
        known = {t for bag in bags + [b for _, qb in qualifiers for b in qb] for t in bag.weights}
        words = expand.feedback_words(
            index, {d: f.score for d, f in found.items() if f.score >= w.admit}, known)
        if not words or not w.expansion:
            return found
        learned = Bag(index, [(t,) for t in words], "", weights=words)
        grown = dict(found)
        for doc in learned.candidates(index, self.floor / w.expansion) | found.keys():
            extra = w.expansion * learned.some(index, doc, w.learned_enough)
            held = found.get(doc) or (resolve(doc) if extra else None)
            if held is not None:
                grown[doc] = _Facet(held.score + extra, held.evidence, held.qualifier, ())
            elif extra >= self.floor:
                carried = tuple(t for t in words if index.saturated(doc, t))
                grown[doc] = _Facet(extra, Evidence(extra, "", ""), "", carried)
        return grown


class _Lazy:
    """A facet's papers whose evidence was not computed (``TopicScorer._facet``): computed on
    first use, so skipping them changes no result."""

    def __init__(self, found: dict[int, _Facet], pending: set[int],
                 judge: Callable[[int], _Facet | None]) -> None:
        self._found, self._pending, self._judge = found, pending, judge
        self._done: dict[int, _Facet | None] = {}

    def __call__(self, doc: int) -> _Facet | None:
        if doc in self._found:
            return self._found[doc]
        if doc not in self._pending:
            return None
        if doc not in self._done:
            self._done[doc] = self._judge(doc)
        return self._done[doc]


def _label(words: Pairs) -> str:
    return " ".join(word for word, _ in words)
