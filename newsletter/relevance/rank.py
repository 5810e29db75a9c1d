"""Relevance of papers to subscriber topics, with a reason a person can check.

A topic is first understood (``query.parse``): its facets ("meta-learning", "few-shot
learning") and qualifiers ("for PDEs"), a misspelt word read as the catalog's. Each facet is
scored on every paper that could match it (``score.Bag``: graded BM25F over title and abstract,
the phrase, closeness and title as boosts), through every way the vocabulary says it (GNN,
graph neural network) and through the words its best matches share (``expand``). A paper's
topic score is its best facet plus a share of the others; with embeddings (``semantic``) its
closeness in meaning joins. Then ``calibrate`` turns what is known of each candidate (its facet
score, its BM25 score, their ranks, the topic's breadth, with embeddings its closeness in
meaning) into the probability that it is relevant, learned from judged topics: papers are
ordered by it and admitted when it reaches ``calibrate.THRESHOLD`` and their facet score
``Weights.admit``. Weak matches never pad a digest, and a topic nothing in the catalog is about
gets nothing. ``Match.score`` is that probability.

Everything about one topic is computed once per run (memoized on the understood query, so
"GNNs" and "gnn" share it); the index is built once per catalog.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from newsletter.models import Paper
from newsletter.relevance.duplicates import Likeness
from newsletter.relevance.index import Index
from newsletter.relevance.query import Query
from newsletter.relevance.reasons import labels
from newsletter.relevance.score import DEFAULT, Weights
from newsletter.relevance.text import Vocabulary, default_vocabulary
from newsletter.relevance.topic import Hit, TopicScorer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from newsletter.relevance.semantic import SemanticIndex

MIN_SCORE = DEFAULT.admit  # kept for callers that name the threshold


@dataclass(frozen=True, slots=True)
class Match:
    paper: Paper
    score: float
    topic: str  # the topic as the caller wrote it
    reason: str  # "matches: GNN → graph neural network (title)"


def match_order(match: Match) -> tuple[float, int, str]:
    """Score desc, then newer first, then id: the same total order everywhere."""
    published = match.paper.published
    return (-match.score, -(published.toordinal() if published else 0), match.paper.id)


class Ranker:
    """The index over a catalog and the memo of ranked topics, shared by every subscriber."""

    def __init__(self, papers: Sequence[Paper], vocabulary: Vocabulary | None = None,
                 semantic: SemanticIndex | None = None, min_score: float | None = None,
                 weights: Weights = DEFAULT) -> None:
        if semantic is not None and [p.id for p in semantic.papers] != [p.id for p in papers]:
            raise ValueError("the semantic index was built for another catalog")
        self.index = Index(papers)
        self.papers = self.index.papers
        self.vocabulary = vocabulary if vocabulary is not None else default_vocabulary()
        self.semantic = semantic
        self.weights = weights if min_score is None else replace(weights, admit=min_score)
        self.min_score = self.weights.admit
        self._scorer = TopicScorer(self.index, self.vocabulary, self.weights, semantic)
        self._likeness = Likeness(self.index.tokens, self.index.idf, semantic)
        self.duplicate_threshold = self._likeness.threshold
        self._hits: dict[str, tuple[Hit, ...]] = {}
        self._matches: dict[str, list[Match]] = {}
        self._queries: dict[str, Query] = {}
        self._ids: dict[str, frozenset[str]] = {}

    def understand(self, topic: str) -> Query:
        """The topic as facets (``query.parse``). Memoized: sharing a batch's rankings and
        ranking for a digest both read it, and spelling correction scans the vocabulary."""
        query = self._queries.get(topic)
        if query is None:
            query = self._queries[topic] = self._scorer.understand(topic)
        return query

    def rank(self, topic: str) -> list[Match]:
        """Relevant papers only, best first. Memoized: do not mutate the list."""
        matches = self._matches.get(topic)
        if matches is None:
            query = self.understand(topic)
            names = labels(query)  # "GNN" and "gnns" share a ranking, each named as written
            matches = self._matches[topic] = [
                Match(self.papers[h.doc], h.score, topic, h.reason.text(names))
                for h in self.hits(query)]
        return matches

    def hits(self, query: Query) -> tuple[Hit, ...]:
        """The understood query's ranking, by paper index: computed once, then memoized."""
        hits = self._hits.get(query.key)
        if hits is None:
            hits = self._hits[query.key] = self._scorer.score(query)
        return hits

    def unranked(self, topics: Iterable[str]) -> dict[str, Query]:
        """The understood queries of ``topics`` this ranker has not ranked yet, by key."""
        queries = (self.understand(topic) for topic in dict.fromkeys(topics)
                   if topic not in self._matches)
        return {q.key: q for q in queries if q.key not in self._hits}

    def adopt(self, key: str, hits: tuple[Hit, ...]) -> None:
        """Take a ranking computed elsewhere for the query ``key`` (``relevance.shared``)."""
        self._hits.setdefault(key, hits)

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

    # -- paper vectors, for models of a reader's taste (papers liked, saved or written) --------

    def term_vector(self, paper: Paper) -> dict[str, float]:
        """The paper's words, idf-weighted and unit length (title words count 3 times): a
        catalog paper's from the index, any other paper's computed with the catalog's idf."""
        doc = self.index.doc_of.get(paper.id)
        if doc is not None:
            return self.index.term_vector(doc)
        return self.index.text_vector(paper.title, paper.abstract)

    def dense_vector(self, paper: Paper) -> Any:
        """The paper's unit-length embedding (a numpy row) when an encoder is installed, else
        None. Catalog papers' come from the index (cached in the store); others are encoded."""
        if self.semantic is None:
            return None
        doc = self.index.doc_of.get(paper.id)
        if doc is not None:
            return self.semantic.vectors[doc]
        from newsletter.relevance.semantic import paper_text

        return self.semantic.encoder.encode([paper_text(paper)])[0]

    def similarity(self, a: Paper, b: Paper) -> float:
        """How alike two catalog papers are, 0..1 (see :mod:`newsletter.relevance.duplicates`)."""
        return self._likeness(self.index.doc_of[a.id], self.index.doc_of[b.id])

    def near_duplicate(self, a: Paper, b: Paper) -> bool:
        return self._likeness.alike(self.index.doc_of[a.id], self.index.doc_of[b.id])

    def near_duplicate_of_any(self, paper: Paper, others: Iterable[Paper]) -> bool:
        """Whether ``paper`` is a near-duplicate of one of ``others`` (a digest's papers)."""
        doc_of, alike = self.index.doc_of, self._likeness.alike
        doc = doc_of[paper.id]
        return any(alike(doc, doc_of[other.id]) for other in others)

def build_ranker(papers: Sequence[Paper], engine: Engine | None = None,
                 vocabulary: Vocabulary | None = None, semantic: str | bool = "auto",
                 min_score: float | None = None) -> Ranker:
    """The ranker ``send``, ``run``, ``recommend`` and the web preview all use: with meaning
    when the ``semantic`` extra is installed (embeddings cached in ``engine``) and ``semantic``
    is not "off" (NEWSLETTER_SEMANTIC), by words alone otherwise (logged once)."""
    index = None
    if semantic not in (False, "off"):
        from newsletter.relevance.semantic import build_index

        index = build_index(papers, engine)
    return Ranker(papers, vocabulary, semantic=index, min_score=min_score)
