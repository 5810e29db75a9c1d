"""The inverted index of one catalog, built once per run and shared by every subscriber.

Papers are indexed as two fields, title and abstract, of stemmed terms (``text.terms``). The
index keeps per paper and field the term counts (for BM25F), the term sequence (for proximity
and phrases, read only for papers a query already matched), a postings list per term and the
BM25 idf. :meth:`Index.term_vector` gives a paper's idf-weighted, unit-length term vector: the
lexical side of "papers like this one" (near-duplicates, and a reader's own papers).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

from newsletter.models import Paper
from newsletter.relevance.proximity import has_phrase
from newsletter.relevance.text import compounds, terms

TITLE, ABSTRACT = 0, 1
# BM25F (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009):
# per-field term frequencies are length-normalized, weighted, summed, then saturated once.
K1 = 1.2  # saturation: the 3rd mention of a word says little more than the 2nd
FIELD_WEIGHT = (3.0, 1.0)  # (title, abstract): a title word is the paper's own summary
FIELD_B = (0.3, 0.75)  # length normalization; titles are uniformly short, so barely normalized

Fields = tuple[tuple[str, ...], tuple[str, ...]]
POSITIONS_KEPT = 5000  # papers whose term positions stay in memory (~20 KB each)
PHRASE_SAMPLE = 200  # papers read to tell how common a phrase is
SHARED_KEPT = 20_000  # memos of shared work (one per way of saying words) before a fresh start


K = TypeVar("K")
V = TypeVar("V")


class Bounded(dict[K, V]):
    """A memo that starts again once it holds ``limit`` entries: memory stays flat however
    many topics and papers a run reads."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        if len(self) >= self.limit and key not in self:
            self.clear()
        super().__setitem__(key, value)


class Index:
    def __init__(self, papers: Sequence[Paper]) -> None:
        self.papers = tuple(papers)
        self.size = len(self.papers)
        self.tokens: list[Fields] = []
        self.counts: list[tuple[Counter[str], Counter[str]]] = []
        postings: dict[str, array] = {}
        for doc, paper in enumerate(self.papers):
            fields = (tuple(terms(paper.title)), tuple(terms(paper.abstract)))
            self.tokens.append(fields)
            # Joined hyphenated words count as terms but take no position: proximity and
            # phrases read the words as written.
            counts = (Counter(fields[TITLE] + tuple(compounds(paper.title))),
                      Counter(fields[ABSTRACT] + tuple(compounds(paper.abstract))))
            self.counts.append(counts)
            for term in counts[TITLE].keys() | counts[ABSTRACT].keys():
                postings.setdefault(term, array("I")).append(doc)
        self.postings = postings
        self.df = {term: len(docs) for term, docs in postings.items()}
        count = max(self.size, 1)
        averages = [max(sum(len(f[i]) for f in self.tokens) / count, 1.0) for i in (0, 1)]
        self.norms = [
            tuple(1 - FIELD_B[i] + FIELD_B[i] * len(f[i]) / averages[i] for i in (0, 1))
            for f in self.tokens]
        # Words per paper, title and abstract together (textbook BM25, ``calibrate``).
        self.lengths = array("I", (len(f[0]) + len(f[1]) for f in self.tokens))
        self.average_length = max(sum(self.lengths) / count, 1.0)
        self.doc_of = {paper.id: doc for doc, paper in enumerate(self.papers)}
        self._vectors: dict[int, dict[str, float]] = {}
        Positions = tuple[dict[str, list[int]], dict[str, list[int]]]
        self._positions: Bounded[int, Positions] = Bounded(POSITIONS_KEPT)
        self._shared: Bounded[tuple[str, object], dict[int, float]] = Bounded(SHARED_KEPT)
        self._holders: Bounded[tuple[str, ...], frozenset[int]] = Bounded(SHARED_KEPT)
        self._phrase_shares: Bounded[tuple[str, ...], float] = Bounded(SHARED_KEPT)
        self._vocabularies: Bounded[int, frozenset[str]] = Bounded(POSITIONS_KEPT)

    def shared(self, kind: str, key: object) -> dict[int, float]:
        """A per-paper memo that every topic of the run shares, for one ``kind`` of value of
        one set of words (``score.Bag``). Bounded: past SHARED_KEPT memos it starts again."""
        memo = self._shared.get((kind, key))
        if memo is None:
            memo = self._shared[kind, key] = {}
        return memo

    def idf(self, term: str) -> float:
        """BM25's idf with Lucene's +1, so a word in most papers still weighs a little; a word no
        paper has weighs most."""
        df = self.df.get(term, 0)
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def tf(self, doc: int, term: str) -> float:
        """The BM25F pseudo-frequency of ``term`` in ``doc``: weighted, length-normalized."""
        counts, norms = self.counts[doc], self.norms[doc]
        return (FIELD_WEIGHT[TITLE] * counts[TITLE].get(term, 0) / norms[TITLE]
                + FIELD_WEIGHT[ABSTRACT] * counts[ABSTRACT].get(term, 0) / norms[ABSTRACT])

    def saturated(self, doc: int, term: str) -> float:
        """0..1: how strongly ``doc`` is about ``term`` by its frequency alone."""
        tf = self.tf(doc, term)
        return tf / (K1 + tf) if tf else 0.0

    def saturations(self, term: str) -> dict[int, float]:
        """``saturated`` of every paper saying ``term``; computed once per run, since the
        topics of a run share words ("learning", "network")."""
        found = self.shared("saturated", term)
        if not found:
            found.update((doc, self.saturated(doc, term)) for doc in self.docs_with(term))
        return found

    def holders(self, words: tuple[str, ...]) -> frozenset[int]:
        """The papers saying every one of ``words``. Memoized for the run."""
        found = self._holders.get(words)
        if found is None:
            rarest = sorted(words, key=lambda t: self.df.get(t, 0))
            docs = set(self.docs_with(rarest[0])) if rarest else set()
            for term in rarest[1:]:
                docs.intersection_update(self.docs_with(term))
            found = self._holders[words] = frozenset(docs)
        return found

    def phrase_share(self, words: tuple[str, ...]) -> float:
        """The share of the papers saying ``words`` word for word, estimated from at most
        PHRASE_SAMPLE of the papers holding them all. Memoized for the run."""
        found = self._phrase_shares.get(words)
        if found is None:
            holders = sorted(self.holders(words))
            sample = holders[:PHRASE_SAMPLE]
            said = sum(1 for doc in sample
                       if any(has_phrase(words, field) for field in self.positions(doc)))
            found = self._phrase_shares[words] = (
                said / len(sample) * len(holders) / max(self.size, 1) if sample else 0.0)
        return found

    def vocabulary_of(self, doc: int) -> frozenset[str]:
        """The terms of a paper, title and abstract. Memoized for the papers read last: the
        best matches of a topic teach its words (``expand``) more than once a run."""
        found = self._vocabularies.get(doc)
        if found is None:
            title, abstract = self.counts[doc]
            found = self._vocabularies[doc] = frozenset(title.keys() | abstract.keys())
        return found

    def docs_with(self, term: str) -> Sequence[int]:
        return self.postings.get(term, ())

    def in_title(self, doc: int, term: str) -> bool:
        return term in self.counts[doc][TITLE]

    def positions(self, doc: int) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Per field, where each term occurs. Kept for the POSITIONS_KEPT papers read last:
        the papers one topic reads are read again by the next topics of the run."""
        found = self._positions.get(doc)
        if found is None:
            found = ({}, {})
            for field, tokens in zip(found, self.tokens[doc]):
                for i, token in enumerate(tokens):
                    field.setdefault(token, []).append(i)
            self._positions[doc] = found
        return found

    def text_vector(self, title: str, abstract: str) -> dict[str, float]:
        """Like :meth:`term_vector`, for a text outside the catalog (a reader's own paper),
        weighted by this catalog's idf."""
        counts = Counter(terms(abstract))
        for term in terms(title):
            counts[term] += FIELD_WEIGHT[TITLE]
        weights = {t: c * self.idf(t) for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {t: w / norm for t, w in weights.items()}

    def term_vector(self, doc: int) -> dict[str, float]:
        """The paper's terms weighted by count x idf (title words count ``FIELD_WEIGHT`` times),
        unit length. Memoized: near-duplicate checks and readers' profiles reuse them."""
        vector = self._vectors.get(doc)
        if vector is None:
            counts = self.counts[doc]
            weights = {t: (FIELD_WEIGHT[TITLE] * counts[TITLE].get(t, 0)
                           + counts[ABSTRACT].get(t, 0)) * self.idf(t)
                       for t in counts[TITLE].keys() | counts[ABSTRACT].keys()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            vector = self._vectors[doc] = {t: w / norm for t, w in weights.items()}
        return vector
