"""Lexical relevance of papers to subscriber topics: BM25F over title and abstract.

Written by hand rather than with bm25s / rank-bm25 because we need per-field weights and a
reason a person can check ("matches: GNN → graph neural network (title)").

A paper is relevant to a topic when some *variant* of the topic (the topic itself, or the topic
with a vocabulary phrase swapped for an abbreviation or synonym) is covered by the paper. Each
variant is a list of phrases; a phrase is covered when its words occur close together in one
field (stemmed, stopwords dropped, in any order: ``proximity.py``). Phrases of LONG_PHRASE words
or more may miss words, as long as the words found carry 75% of the phrase's idf:
"physics-informed networks" covers "physics-informed neural networks", but "information ...
neural network" does not (the rare word "physics" is the one missing). Near-duplicate papers
are told apart in ``duplicates.py``.

With the ``semantic`` extra the ranking is hybrid (see :func:`build_ranker`): a literal match
scores its BM25F score plus its cosine with the topic (MiniLM embeddings), so among papers that
say the topic the ones about it come first; a paper that never says it is admitted only when it
is very close in meaning (``semantic.fuse``), and its reason quotes its closest sentence.
Either way a match must reach ``MIN_SCORE``: weak matches never pad a digest.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.models import Paper
from newsletter.relevance.duplicates import Likeness
from newsletter.relevance.proximity import covers, has_phrase
from newsletter.relevance.text import (
    Phrase,
    Variant,
    Vocabulary,
    default_vocabulary,
    query_text,
    terms,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from newsletter.relevance.semantic import SemanticIndex

# BM25F (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009):
# per-field term frequencies are length-normalized, weighted, summed, then saturated once.
K1 = 1.2  # saturation: the 3rd mention of a word says little more than the 2nd
FIELD_WEIGHT = (3.0, 1.0)  # (title, abstract): a title word is the paper's own summary
FIELD_B = (0.3, 0.75)  # length normalization; titles are uniformly short, so barely normalized
TITLE_BONUS = 0.5  # score × 1.5 when the whole topic is in the title
PHRASE_BONUS = 0.2  # score × 1.2 when every phrase appears word for word
LONG_PHRASE = 4  # phrases this long may miss words...
LONG_COVERAGE = 0.75  # ...if the words found carry this share of the phrase's idf
# Relevance threshold on the BM25F score (0..1.7). One exact mention in an abstract of average
# length scores ~0.55 (1/2.2 x 1.2), a title match ~1.3; under 0.4 are inexact or partial
# mentions in long abstracts. Higher cuts more: on the labelled set 0.55 lifts the precision of
# the returned set from 0.88 to 0.91 for 0.014 of recall (benchmarks/relevance/README.md), but
# scores shrink in small catalogs of one-line abstracts, so the default stays low.
MIN_SCORE = 0.4


@dataclass(frozen=True, slots=True)
class Match:
    paper: Paper
    score: float
    topic: str  # the topic as the caller wrote it
    reason: str  # "matches: GNN → graph neural network (title)"


@dataclass(frozen=True, slots=True)
class _Hit:
    """A scored paper for a normalized topic; turned into a Match per spelling of the topic."""

    doc: int
    score: float
    label: str | None  # the variant that matched, None when it is the topic itself
    field: str  # "title", "abstract", "title and abstract", or "meaning" (semantic only)


Positions = tuple[dict[str, list[int]], dict[str, list[int]]]  # per field: stem -> positions


def match_order(match: Match) -> tuple[float, int, str]:
    """Score desc, then newer first, then id: the same total order everywhere."""
    published = match.paper.published
    return (-match.score, -(published.toordinal() if published else 0), match.paper.id)


class Ranker:
    """An inverted index over a catalog, built once per run and shared by every subscriber."""

    def __init__(self, papers: Sequence[Paper], vocabulary: Vocabulary | None = None,
                 semantic: SemanticIndex | None = None, min_score: float = MIN_SCORE) -> None:
        self.papers = tuple(papers)
        self.vocabulary = vocabulary if vocabulary is not None else default_vocabulary()
        if semantic is not None and [p.id for p in semantic.papers] != [p.id for p in papers]:
            raise ValueError("the semantic index was built for another catalog")
        self.semantic = semantic
        self.min_score = min_score
        self._doc = {paper.id: doc for doc, paper in enumerate(self.papers)}
        self._tokens: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        postings: dict[str, array] = {}
        for doc, paper in enumerate(self.papers):
            fields = (tuple(terms(paper.title)), tuple(terms(paper.abstract)))
            self._tokens.append(fields)
            for term in set(fields[0]).union(fields[1]):
                postings.setdefault(term, array("I")).append(doc)
        self._postings = postings
        self._idfs = {term: self._idf_for(len(docs)) for term, docs in postings.items()}
        count = max(len(self.papers), 1)
        averages = [max(sum(len(f[i]) for f in self._tokens) / count, 1.0) for i in (0, 1)]
        self._norms = [
            tuple(1 - FIELD_B[i] + FIELD_B[i] * len(f[i]) / averages[i] for i in (0, 1))
            for f in self._tokens
        ]
        self._likeness = Likeness(self._tokens, self._idf, semantic)
        self.duplicate_threshold = self._likeness.threshold
        self._hits: dict[str, tuple[_Hit, ...]] = {}
        self._matches: dict[str, list[Match]] = {}
        self._ids: dict[str, frozenset[str]] = {}

    def rank(self, topic: str) -> list[Match]:
        """Relevant papers only, best first. Memoized: do not mutate the list."""
        matches = self._matches.get(topic)
        if matches is None:
            pairs = self.vocabulary.analyze(topic)
            key = " ".join(stem for _, stem in pairs)
            hits = self._hits.get(key)
            if hits is None:
                hits = tuple(h for h in self._score_topic(pairs) if h.score >= self.min_score)
                if self.semantic is not None:
                    hits = self._fuse(pairs, hits)
                self._hits[key] = hits
            matches = self._matches[topic] = [self._match(topic, hit) for hit in hits]
        return matches

    def matching_ids(self, topic: str) -> frozenset[str]:
        """Ids of the papers relevant to ``topic`` (for excluded topics). Memoized."""
        ids = self._ids.get(topic)
        if ids is None:
            ids = self._ids[topic] = frozenset(m.paper.id for m in self.rank(topic))
        return ids

    def recommend(self, topics: Sequence[str], limit: int,
                  exclude_ids: Collection[str] = ()) -> list[Match]:
        """The best ``limit`` papers over ``topics``, each once, under its best topic."""
        excluded = exclude_ids if isinstance(exclude_ids, (set, frozenset)) else set(exclude_ids)
        best: dict[str, Match] = {}
        for topic in topics:
            # Lists are sorted, so a paper past the first `limit` eligible ones of every list
            # has `limit` better papers ahead of it: stop there (a topic can match thousands).
            taken = 0
            for match in self.rank(topic):
                if taken >= limit:
                    break
                if match.paper.id in excluded:
                    continue
                taken += 1
                held = best.get(match.paper.id)
                if held is None or match.score > held.score:
                    best[match.paper.id] = match
        return sorted(best.values(), key=match_order)[:max(limit, 0)]

    def similarity(self, a: Paper, b: Paper) -> float:
        """How alike two catalog papers are, 0..1 (see :mod:`newsletter.relevance.duplicates`)."""
        return self._likeness(self._doc[a.id], self._doc[b.id])

    def near_duplicate(self, a: Paper, b: Paper) -> bool:
        return self.similarity(a, b) >= self.duplicate_threshold

    def _match(self, topic: str, hit: _Hit) -> Match:
        if hit.field == "meaning":  # the closest sentence is what a person can check
            return Match(self.papers[hit.doc], hit.score, topic,
                         f"close in meaning to {topic}: \u201c{hit.label}\u201d")
        said = f"{topic} → {hit.label}" if hit.label else topic
        return Match(self.papers[hit.doc], hit.score, topic, f"matches: {said} ({hit.field})")

    def _fuse(self, pairs: Sequence[tuple[str, str]], hits: Sequence[_Hit]) -> tuple[_Hit, ...]:
        """Literal matches plus cosine; papers close in meaning alone, strictly (semantic.fuse)."""
        from newsletter.relevance.semantic import fuse

        assert self.semantic is not None
        query = query_text(" ".join(word for word, _ in pairs),
                           [v.label for v in self.vocabulary.variants(pairs)])
        scores, close = fuse(self.semantic.similarities([query]), {h.doc: h.score for h in hits})
        quotes = self.semantic.closest_sentences(close, [query]) if close else {}
        fused = [_Hit(h.doc, scores[h.doc], h.label, h.field) for h in hits]
        fused += [_Hit(doc, scores[doc], quotes.get(doc, ""), "meaning") for doc in close]
        return tuple(sorted(fused, key=self._hit_order))

    def _score_topic(self, pairs: Sequence[tuple[str, str]]) -> tuple[_Hit, ...]:
        variants = [(v, self._candidates(v)) for v in self.vocabulary.variants(pairs)]
        wanted = {term for v, _ in variants for phrase in v.phrases for term in phrase}
        own = tuple(stem for _, stem in pairs)
        best: dict[int, _Hit] = {}
        for doc in set().union(*(docs for _, docs in variants)):
            positions = self._positions(doc, wanted)
            for variant, docs in variants:
                if doc not in docs:
                    continue
                hit = self._judge(doc, variant, positions, own)
                if hit is not None and (doc not in best or hit.score > best[doc].score):
                    best[doc] = hit
        return tuple(sorted(best.values(), key=self._hit_order))

    def _hit_order(self, hit: _Hit) -> tuple[float, int, str]:
        paper = self.papers[hit.doc]
        return (-hit.score, -(paper.published.toordinal() if paper.published else 0), paper.id)

    def _idf_for(self, df: int) -> float:
        # The BM25 idf with Lucene's +1, so a word in most papers still weighs a little.
        return math.log(1 + (len(self.papers) - df + 0.5) / (df + 0.5))

    def _idf(self, term: str) -> float:
        idf = self._idfs.get(term)
        return self._idf_for(0) if idf is None else idf

    def _weights(self, phrase: Phrase) -> tuple[dict[str, float], float]:
        """Per-term weight and the total a window must reach to cover ``phrase``."""
        distinct = dict.fromkeys(phrase)
        if len(phrase) < LONG_PHRASE:
            return {term: 1.0 for term in distinct}, float(len(distinct))
        weights = {term: self._idf(term) for term in distinct}
        return weights, LONG_COVERAGE * sum(weights.values())

    def _candidates(self, variant: Variant) -> set[int]:
        """Papers that could cover every phrase, from the postings alone."""
        docs: set[int] | None = None
        for phrase in variant.phrases:
            found = self._phrase_candidates(phrase)
            docs = found if docs is None else docs & found
            if not docs:
                return set()
        return docs or set()

    def _phrase_candidates(self, phrase: Phrase) -> set[int]:
        weights, need = self._weights(phrase)
        if len(phrase) < LONG_PHRASE:  # every word is required: intersect, shortest list first
            lists = sorted((self._postings.get(t, array("I")) for t in weights), key=len)
            docs = set(lists[0])
            for more in lists[1:]:
                docs.intersection_update(more)
            return docs
        # A paper lacking all of the rarest words that carry more than 1 - LONG_COVERAGE of the
        # weight cannot reach `need`: papers with at least one of them are the candidates.
        docs, rest = set(), sum(weights.values())
        for term in sorted(weights, key=weights.__getitem__, reverse=True):
            if rest < need:
                break
            docs.update(self._postings.get(term, ()))
            rest -= weights[term]
        return docs

    def _positions(self, doc: int, wanted: set[str]) -> Positions:
        found: tuple[dict[str, list[int]], dict[str, list[int]]] = ({}, {})
        for field, tokens in zip(found, self._tokens[doc]):
            for i in [i for i, token in enumerate(tokens) if token in wanted]:
                field.setdefault(tokens[i], []).append(i)
        return found

    def _judge(self, doc: int, variant: Variant, positions: Positions, own: Phrase) -> _Hit | None:
        covered = [[covers(p, field, *self._weights(p)) for field in positions]
                   for p in variant.phrases]
        if not all(any(where) for where in covered):
            return None
        in_title = all(where[0] for where in covered)
        in_abstract = all(where[1] for where in covered)
        field = "title" if in_title else "abstract" if in_abstract else "title and abstract"
        exact = all(any(has_phrase(p, f) for f in positions) for p in variant.phrases)
        words = {term for phrase in variant.phrases for term in phrase}
        score = self._bm25f(doc, words, positions) / self._ideal(words) * (
            1 + TITLE_BONUS * in_title + PHRASE_BONUS * exact)
        flat = tuple(term for phrase in variant.phrases for term in phrase)
        return _Hit(doc, score, None if flat == own else variant.label, field)

    def _ideal(self, words: Iterable[str]) -> float:
        # Raw BM25 grows with the number of query words ("message passing neural network" beat
        # "GNN" on the same paper); dividing by the limit, a paper repeating every word forever,
        # makes variants and topics comparable: 0..1 before the bonuses.
        return sum(self._idf(term) for term in words) * (K1 + 1) or 1.0

    def _bm25f(self, doc: int, words: Iterable[str], positions: Positions) -> float:
        norms = self._norms[doc]
        score = 0.0
        for term in words:
            tf = sum(FIELD_WEIGHT[i] * len(positions[i].get(term, ())) / norms[i] for i in (0, 1))
            if tf:
                score += self._idf(term) * tf * (K1 + 1) / (K1 + tf)
        return score


def build_ranker(papers: Sequence[Paper], engine: Engine | None = None,
                 vocabulary: Vocabulary | None = None, semantic: bool = True,
                 min_score: float = MIN_SCORE) -> Ranker:
    """The ranker ``send``, ``run`` and ``recommend`` all use: hybrid when the ``semantic`` extra
    is installed (embeddings cached in ``engine``), lexical otherwise (logged once)."""
    index = None
    if semantic:
        from newsletter.relevance.semantic import (
            build_index,  # imports nothing heavy until the model is loaded
        )

        index = build_index(papers, engine)
    return Ranker(papers, vocabulary, semantic=index, min_score=min_score)
