"""Relevance of each ranker on the labelled set: nDCG@10, P@10 and Recall@20 per topic.

    .venv/bin/python benchmarks/relevance/evaluate.py [--per-topic] [--vocabulary FILE]
        [--no-semantic] [--markdown]

The catalog is the seed pages (``seeds/``), ingested into a temporary SQLite database exactly
as ``newsletter ingest`` does; the judgments are ``qrels.tsv`` beside this file (read README.md
for how they were made). A paper a topic's qrels do not list counts as not relevant (grade 0).

Rankers, all run over the whole catalog for every topic:
  bm25-or       textbook BM25 over title + abstract, any query word (a reference point)
  bm25          the project's BM25F ranker with an empty vocabulary: no expansion
  bm25+vocab    the default lexical ranker: BM25F with the vocabulary's expansions
  semantic      MiniLM cosine with the expanded topic alone, every paper (a reference point)
  bm25+semantic bm25 fused with the embeddings: a topic the vocabulary does not know
  hybrid        bm25+vocab fused with the embeddings: the default with the `semantic` extra

The three rankers marked as deciding relevance (bm25, bm25+vocab, bm25+semantic, hybrid) also
get the precision and recall of the *set* they return: a digest takes from that set, so its
precision is how often a weak match would pad one.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsletter.catalog import ingest
from newsletter.models import Paper
from newsletter.relevance.rank import Ranker
from newsletter.relevance.semantic import build_index
from newsletter.relevance.text import Vocabulary, query_text, terms
from newsletter.store.catalog import count_papers, load_papers
from newsletter.store.schema import connect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RankFn = Callable[[str], list[str]]  # topic -> paper ids, best first


def load_catalog(engine_url: str | None = None) -> tuple[list[Paper], Any]:
    """The seed catalog, through the same ingest as production (dedupe included)."""
    tmp = tempfile.mkdtemp(prefix="relevance-")
    engine = connect(engine_url or f"sqlite:///{tmp}/ingest.db")
    if count_papers(engine) == 0:
        ingest.ingest(engine, [ROOT / "seeds"], datetime(2026, 1, 1, tzinfo=UTC))
    return load_papers(engine), engine


def load_splits() -> dict[str, str]:
    """Topic -> "dev" or "test", in file order (topics.tsv: topic, kind, split, definition)."""
    lines = (HERE / "topics.tsv").read_text("utf-8").splitlines()[1:]
    return {line.split("\t")[0]: line.split("\t")[2] for line in lines if line.strip()}


def load_topics(split: str | None = None) -> list[str]:
    return [topic for topic, s in load_splits().items() if split in (None, s)]


def load_qrels() -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in (HERE / "qrels.tsv").read_text("utf-8").splitlines()[1:]:
        if line.strip():
            topic, pid, grade, *_ = line.split("\t")
            qrels.setdefault(topic, {})[pid] = int(grade)
    return qrels


# -- metrics ------------------------------------------------------------------------------------


def ndcg(ranked: Sequence[str], grades: dict[str, int], k: int = 10) -> float:
    """Linear gains (trec_eval's), log2 discount; the ideal is every judged paper in grade order."""
    dcg = sum(grades.get(pid, 0) / math.log2(i + 2) for i, pid in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / best if best else 0.0


def precision(ranked: Sequence[str], grades: dict[str, int], k: int = 10) -> float:
    """Relevant (grade >= 1) among the top k; a short list is padded with misses."""
    return sum(grades.get(pid, 0) > 0 for pid in ranked[:k]) / k


def recall(ranked: Sequence[str], grades: dict[str, int], k: int = 20) -> float:
    relevant = {pid for pid, g in grades.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


# -- rankers ------------------------------------------------------------------------------------


def bm25_or(papers: Sequence[Paper], k1: float = 1.2, b: float = 0.75) -> RankFn:
    """Okapi BM25 over title + abstract as one field; a paper needs one query word to score."""
    docs = [terms(f"{p.title} {p.abstract}") for p in papers]
    average = sum(map(len, docs)) / len(docs)
    df: dict[str, int] = {}
    for doc in docs:
        for term in set(doc):
            df[term] = df.get(term, 0) + 1
    n = len(docs)

    def rank(topic: str) -> list[str]:
        query = set(terms(topic))
        scored = []
        for paper, doc in zip(papers, docs):
            score = 0.0
            for term in query:
                tf = doc.count(term)
                if tf:
                    idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                    score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / average))
            if score > 0:
                scored.append((-score, paper.id))
        return [pid for _, pid in sorted(scored)]
    return rank


def from_ranker(ranker: Ranker) -> RankFn:
    return lambda topic: [m.paper.id for m in ranker.rank(topic)]


def build_rankers(papers: list[Paper], engine: Any, vocabulary: Vocabulary,
                  semantic: bool) -> dict[str, RankFn]:
    rankers: dict[str, RankFn] = {
        "bm25-or": bm25_or(papers),
        "bm25": from_ranker(Ranker(papers, Vocabulary({}))),
        "bm25+vocab": from_ranker(Ranker(papers, vocabulary)),
    }
    index = build_index(papers, engine) if semantic else None
    if index is None:
        if semantic:
            print("the semantic extra is not installed: no hybrid rankers", file=sys.stderr)
        return rankers
    rankers["semantic"] = semantic_only(index, vocabulary)
    rankers["bm25+semantic"] = from_ranker(Ranker(papers, Vocabulary({}), semantic=index))
    rankers["hybrid"] = from_ranker(Ranker(papers, vocabulary, semantic=index))
    return rankers


def semantic_only(index: Any, vocabulary: Vocabulary) -> RankFn:
    """Every paper by cosine with the expanded topic: what the embeddings know on their own."""
    def rank(topic: str) -> list[str]:
        labels = [v.label for v in vocabulary.variants(vocabulary.analyze(topic))]
        cosine = index.similarities([query_text(topic, labels)])
        order = sorted(range(len(cosine)), key=lambda i: -cosine[i])
        return [index.papers[i].id for i in order]
    return rank


# -- report -------------------------------------------------------------------------------------

DECIDING = ("bm25", "bm25+vocab", "bm25+semantic", "hybrid")  # return only what they call relevant
Scores = tuple[float, float, float, float, float]  # nDCG@10, P@10, R@20, set precision, set recall


def evaluate(rankers: dict[str, RankFn], topics: list[str], qrels: dict[str, dict[str, int]],
             ) -> dict[str, dict[str, Scores]]:
    results: dict[str, dict[str, Scores]] = {}
    for name, rank in rankers.items():
        results[name] = {}
        for topic in topics:
            ranked, grades = rank(topic), qrels.get(topic, {})
            relevant = {pid for pid, g in grades.items() if g > 0}
            found = relevant.intersection(ranked)
            results[name][topic] = (ndcg(ranked, grades), precision(ranked, grades),
                                    recall(ranked, grades),
                                    len(found) / len(ranked) if ranked else 1.0,
                                    len(found) / len(relevant) if relevant else 1.0)
    return results


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def print_report(results: dict[str, dict[str, Scores]], topics: list[str], per_topic: bool,
                 markdown: bool) -> None:
    names = list(results)
    head = ["nDCG@10", "P@10", "R@20", "set P", "set R"]

    def cells(name: str, scores: Sequence[float]) -> list[str]:
        shown = [f"{x:.3f}" for x in scores]
        return shown if name in DECIDING else shown[:3] + ["-", "-"]

    if per_topic:
        if markdown:
            print("| topic | " + " | ".join(names) + " |")
            print("| --- |" + " --- |" * len(names))
            for topic in topics:
                print(f"| {topic} | " + " | ".join(
                    f"{results[name][topic][0]:.2f}" for name in names) + " |")
            print("\n(nDCG@10 per topic)")
        else:
            for topic in topics:
                print(f"\n{topic}")
                for name in names:
                    print(f"  {name:14s}" + "  ".join(
                        f"{h} {c:>5s}" for h, c in zip(head, cells(name, results[name][topic]))))
    print()
    means = {name: [mean([results[name][t][i] for t in topics]) for i in range(5)]
             for name in names}
    if markdown:
        print("| ranker | " + " | ".join(f"mean {h}" for h in head) + " |")
        print("| --- |" + " --- |" * len(head))
        for name in names:
            print(f"| {name} | " + " | ".join(cells(name, means[name])) + " |")
    else:
        print(f"{'ranker':14s}" + "".join(f"{h:>9s}" for h in head))
        for name in names:
            print(f"{name:14s}" + "".join(f"{c:>9s}" for c in cells(name, means[name])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-topic", action="store_true", help="every topic, every ranker")
    parser.add_argument("--markdown", action="store_true", help="tables as Markdown")
    parser.add_argument("--vocabulary", type=Path, help="another vocabulary.toml to compare")
    parser.add_argument("--no-semantic", action="store_true", help="skip the hybrid rankers")
    parser.add_argument("--db", help="database URL that keeps the catalog and its embeddings "
                        "between runs (default: a new temporary SQLite file)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    papers, engine = load_catalog(args.db)
    topics, qrels = load_topics(), load_qrels()
    known = {p.id for p in papers}
    missing = sorted({pid for grades in qrels.values() for pid in grades} - known)
    if missing:  # the parser or the seeds changed: judgments would silently count as misses
        print(f"qrels name {len(missing)} papers the catalog lacks, e.g. {missing[0]}",
              file=sys.stderr)
        return 1
    vocabulary = (Vocabulary(tomllib.loads(args.vocabulary.read_text("utf-8")))
                  if args.vocabulary else None) or Vocabulary.load()
    rankers = build_rankers(papers, engine, vocabulary, semantic=not args.no_semantic)
    results = evaluate(rankers, topics, qrels)
    print(f"{len(papers)} papers, {len(topics)} topics, "
          f"{sum(g > 0 for q in qrels.values() for g in q.values())} relevant judgments "
          f"({time.perf_counter() - started:.1f} s to load and index)")
    print_report(results, topics, args.per_topic, args.markdown)
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
