"""Topic rankings shared between the processes of a run: a ranking read back is the one
computed, only for the exact catalog, vocabulary, weights and code it was made from, and
processes that start together split the topics."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Collection, Mapping

import pytest
from catalogs import seed_papers

import newsletter.relevance.shared as shared
from newsletter.models import Paper
from newsletter.relevance.rank import Ranker
from newsletter.relevance.score import DEFAULT
from newsletter.relevance.text import Vocabulary, default_vocabulary

TOPICS = ["GNN", "PINNs", "meta-learning / few-shot learning", "optimal transport",
          "deep learning for weather", "graph neural networks", "gnns", "sentiment analysis"]


class DictStore:
    """The store's two calls over a dict, counting what passes through them."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], str] = {}
        self.saved = 0

    def load(self, catalog: str, queries: Collection[str]) -> dict[str, str]:
        return {q: self.rows[catalog, q] for q in queries if (catalog, q) in self.rows}

    def save(self, catalog: str, rankings: Mapping[str, str]) -> None:
        for query, hits in rankings.items():
            self.rows.setdefault((catalog, query), hits)
        self.saved += len(rankings)

    def share(self, ranker: Ranker, topics: list[str] = TOPICS) -> shared.Shared:
        return shared.share(ranker, topics, self.load, self.save, random.Random(1))


@pytest.fixture(scope="module")
def catalog() -> list[Paper]:
    return list(seed_papers())


def test_a_ranking_taken_from_the_store_is_the_one_computed(catalog: list[Paper]) -> None:
    store = DictStore()
    first, second = Ranker(catalog), Ranker(catalog)
    # "GNN", "graph neural networks" and "gnns" may be one understood query: ranked once
    distinct = len({first.understand(t).key for t in TOPICS})
    assert store.share(first) == shared.Shared(ranked=distinct, taken=0)
    assert store.share(second) == shared.Shared(ranked=0, taken=distinct)
    for topic in TOPICS:  # papers, scores and reasons, in the topic's own spelling
        assert second.rank(topic) == first.rank(topic) == Ranker(catalog).rank(topic)
    assert any(second.rank(topic) for topic in TOPICS)


def test_topics_ranked_already_in_this_process_are_not_looked_up(catalog: list[Paper]) -> None:
    store, ranker = DictStore(), Ranker(catalog)
    ranker.rank("GNN")
    store.share(ranker, ["GNN"])
    assert store.saved == 0


@pytest.mark.parametrize("change", ["an edited abstract", "another order", "the vocabulary",
                                    "the weights"])
def test_a_ranking_is_never_read_for_other_inputs(catalog: list[Paper], change: str) -> None:
    store = DictStore()
    store.share(Ranker(catalog))
    papers, vocabulary, weights = list(catalog), default_vocabulary(), DEFAULT
    if change == "an edited abstract":
        papers[7] = dataclasses.replace(papers[7], abstract=papers[7].abstract + " Revised.")
    elif change == "another order":
        papers[0], papers[1] = papers[1], papers[0]
    elif change == "the vocabulary":
        vocabulary = Vocabulary({"gnn": {"expansions": ["graph neural network"]}})
    else:
        weights = dataclasses.replace(DEFAULT, title=DEFAULT.title + 0.1)
    other = Ranker(papers, vocabulary, weights=weights)
    assert store.share(other).taken == 0


def test_an_unreadable_stored_ranking_is_ranked_again(
        catalog: list[Paper], caplog: pytest.LogCaptureFixture) -> None:
    store = DictStore()
    store.share(Ranker(catalog), ["PINNs"])
    (key,) = store.rows
    store.rows[key] = "[[1, 0.5"  # cut short
    ranker = Ranker(catalog)
    assert store.share(ranker, ["PINNs"]) == shared.Shared(ranked=1, taken=0)
    assert ranker.rank("PINNs") == Ranker(catalog).rank("PINNs")  # one spelling: one reason
    assert "could not be read" in caplog.text
    store.rows[key] = '[[100000, 0.5, "matches: ", 1, " (title)"]]'  # no such paper
    assert store.share(Ranker(catalog), ["PINNs"]).taken == 0


def test_processes_that_start_together_split_the_topics(
        catalog: list[Paper], monkeypatch: pytest.MonkeyPatch) -> None:
    """One topic between looks at the store; the other process stores a topic each time this
    one looks, in its own order: between them each topic is ranked once."""
    monkeypatch.setattr(shared, "CHUNK_SECONDS", 0.0)
    store, here, there = DictStore(), Ranker(catalog), Ranker(catalog)
    theirs = iter(reversed(list(there.unranked(TOPICS).values())))

    def load(catalog: str, queries: Collection[str]) -> dict[str, str]:
        query = next(theirs, None)
        if query is not None:
            store.save(catalog, {shared._digest(query.key): shared.encode(there.hits(query))})
        return store.load(catalog, queries)

    done = shared.share(here, TOPICS, load, store.save, random.Random(3))
    distinct = len({here.understand(t).key for t in TOPICS})
    assert done.taken > 0 and done.ranked > 0
    assert done.ranked + done.taken == distinct == len(store.rows)
    for topic in TOPICS:
        assert here.rank(topic) == there.rank(topic)


def test_a_topic_that_cannot_be_ranked_leaves_the_others_ranked_and_stored(
        catalog: list[Paper], unrankable: Callable[[str], None],
        caplog: pytest.LogCaptureFixture) -> None:
    """A bug on one topic must not stop a worker's batch: that topic's digests fail when they
    are composed (each recorded), the rest are sent."""
    store, ranker = DictStore(), Ranker(catalog)
    unrankable("PINNs")
    done = store.share(ranker, ["GNN", "PINNs", "optimal transport"])
    assert done == shared.Shared(ranked=2, taken=0) and len(store.rows) == 2
    assert "could not rank a topic (ZeroDivisionError: a bug)" in caplog.text
    assert ranker.rank("GNN")
    with pytest.raises(ZeroDivisionError):
        ranker.rank("PINNs")
