"""Relevance of each ranker on the labelled set, per split: nDCG@10, P@10, Recall@20, and what
`recommend --limit 20` shows.

    .venv/bin/python benchmarks/relevance/evaluate.py
        [--split dev|test|testB|testC|testD|testE|testF|testG|tune|tune4|tune5|tune6|tune7|both]
        [--per-topic]
        [--vocabulary FILE] [--no-semantic] [--markdown] [--db URL]

The catalog is the seed pages (``seeds/``), ingested into a temporary SQLite database exactly
as ``newsletter ingest`` does; the judgments are ``qrels.tsv`` beside this file and the split
``topics.tsv`` (README.md says how both were made). A paper a topic's qrels do not list counts
as not relevant (grade 0). Splits: ``dev`` and ``test`` (issue 13, round one), ``testB`` (round
two), ``testC`` (round three), ``testD`` (judged for round four), ``testE`` (judged for round
five), ``testF`` (judged for round six), ``testG`` (judged for round seven); ``tune`` is dev, test
and testB together, what round three tunes on, ``tune4`` adds testC (round four), ``tune5`` testD
(round five), ``tune6`` testE (round six), ``tune7`` testF (round seven: every split but testG).
Score ``--split testC``, ``testD``, ``testE``, ``testF`` or ``testG`` only with a frozen ranker;
testG is the only one not yet scored.

Rankers, all run over the whole catalog for every topic:
  bm25            textbook BM25 over title + abstract, any query word (a reference point)
  words only      the ranker with no sentence encoder (NEWSLETTER_SEMANTIC=off)
  no vocabulary   the same with an empty abbreviation vocabulary: what the ranker does alone
  words + static  the ranker with WordLlama static embeddings
  words + MiniLM  the ranker with MiniLM (the `semantic` extra)
  static alone, MiniLM alone   cosine with the topic, every paper (reference points)

The rankers that decide relevance (DECIDING) also get the precision and recall of the *set*
they return: a digest takes from that set, so its precision is how often a weak match would
pad one.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics  # noqa: E402  (the sibling module)

from newsletter.catalog import ingest
from newsletter.models import Paper
from newsletter.relevance.rank import Ranker
from newsletter.relevance.semantic import SemanticIndex, build_index
from newsletter.relevance.text import Vocabulary, query_text, terms
from newsletter.store.catalog import count_papers, load_papers
from newsletter.store.engine import connect

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


# Round three tunes on dev, test and testB (92 topics); testC is scored once, with a frozen
# ranker (round two tuned on dev and test and scored testB once). testD (30 topics, judged before
# any ranker output was seen) was held out for round four and scored once; round five tunes on
# all five (tune5). testE (30 topics, judged for round five before any ranker ran on them) was
# scored once with the ranker round five froze, so round six tunes on all six spent splits
# (tune6, 181 topics). testF (30 topics, judged for round six before any ranker ran on them) is
# scored once with the ranker round six freezes; round seven tunes on tune7 (tune6 plus testF,
# 211 topics). testG (30 topics, judged for round seven before any ranker ran on them) is the
# only unspent split: score it once, with the ranker round seven freezes.
SPLITS = {"dev": ("dev",), "test": ("test",), "testB": ("testB",), "testC": ("testC",),
          "testD": ("testD",), "testE": ("testE",), "testF": ("testF",), "testG": ("testG",),
          "tune": ("dev", "test", "testB"),
          "tune4": ("dev", "test", "testB", "testC"),
          "tune5": ("dev", "test", "testB", "testC", "testD"),
          "tune6": ("dev", "test", "testB", "testC", "testD", "testE"),
          "tune7": ("dev", "test", "testB", "testC", "testD", "testE", "testF")}


def load_splits() -> dict[str, str]:
    """Topic -> "dev", "test", "testB", "testC", "testD", "testE", "testF" or "testG", in file
    order (topics.tsv: topic, kind, split, definition)."""
    lines = (HERE / "topics.tsv").read_text("utf-8").splitlines()[1:]
    return {line.split("\t")[0]: line.split("\t")[2] for line in lines if line.strip()}


def load_topics(split: str | None = None) -> list[str]:
    wanted = SPLITS.get(split or "", (split,))
    return [topic for topic, s in load_splits().items() if split is None or s in wanted]


def load_qrels() -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in (HERE / "qrels.tsv").read_text("utf-8").splitlines()[1:]:
        if line.strip():
            topic, pid, grade, *_ = line.split("\t")
            qrels.setdefault(topic, {})[pid] = int(grade)
    return qrels


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
    """Every ranker of the report, by name (DECIDING says which ones decide relevance)."""
    rankers: dict[str, RankFn] = {
        "bm25": bm25_or(papers),
        "words only": from_ranker(Ranker(papers, vocabulary)),
        "no vocabulary": from_ranker(Ranker(papers, Vocabulary({}))),
    }
    if not semantic:
        return rankers
    indexes = {"MiniLM": build_index(papers, engine)}
    try:
        from static_encoder import StaticEncoder

        indexes["static"] = SemanticIndex(papers, StaticEncoder(), engine)
    except ImportError:
        indexes["static"] = None
    for name, index in indexes.items():
        if index is None:
            print(f"no {name} encoder installed: its rankers are left out", file=sys.stderr)
            continue
        rankers[f"words + {name}"] = from_ranker(Ranker(papers, vocabulary, semantic=index))
        rankers[f"{name} alone"] = semantic_only(index, vocabulary)
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

# Rankers that decide relevance return only what they admit; the others order the whole catalog.
DECIDING = ("words only", "no vocabulary", "words + static", "words + MiniLM")


def evaluate(rankers: dict[str, RankFn], topics: list[str], qrels: dict[str, dict[str, int]],
             ) -> dict[str, dict[str, metrics.Scores]]:
    return {name: {topic: metrics.score(rank(topic), qrels.get(topic, {})) for topic in topics}
            for name, rank in rankers.items()}


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_summary(results: dict[str, dict[str, metrics.Scores]], split: str,
                  markdown: bool) -> None:
    head = ["nDCG@10", "P@10", "R@20", "P(20 shown)", "set P", "set R", "empty", "off-topic",
            "10+ short"]
    rows = []
    for name, per_topic in results.items():
        s = metrics.summarize(per_topic)
        deciding = name in DECIDING
        rows.append([name, fmt(s.ndcg10), fmt(s.p10), fmt(s.r20),
                     fmt(s.precision20),
                     fmt(s.set_precision) if deciding else "-",
                     fmt(s.set_recall) if deciding else "-",
                     str(s.empty) if deciding else "-",
                     str(s.off_topic_returning) if deciding else "-",
                     str(len(s.short)) if deciding else "-"])
    topics = len(next(iter(results.values())))
    print(f"\n{split}: {topics} topics")
    if markdown:
        print("| ranker | " + " | ".join(head) + " |")
        print("| --- |" + " --- |" * len(head))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        print(f"{'ranker':16s}" + "".join(f"{h:>12s}" for h in head))
        for row in rows:
            print(f"{row[0]:16s}" + "".join(f"{c:>12s}" for c in row[1:]))


def print_topics(results: dict[str, dict[str, metrics.Scores]], topics: list[str]) -> None:
    names = list(results)
    print("\nper topic: nDCG@10 / relevant shown in the first 20 / returned")
    print(f"{'topic':46s}{'rel':>4s}" + "".join(f"{n[:16]:>18s}" for n in names))
    for topic in topics:
        first = results[names[0]][topic]
        cells = "".join(f"{results[n][topic].ndcg10:6.2f}{results[n][topic].shown:4d}"
                        f"{results[n][topic].returned:6d}  " for n in names)
        print(f"{topic[:46]:46s}{first.relevant:4d}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=(*SPLITS, "both"), default="both",
                        help="which topics to score (testB, testC, testD, testE, testF, testG: "
                        "only with a frozen ranker; both: dev and test)")
    parser.add_argument("--per-topic", action="store_true", help="every topic, every ranker")
    parser.add_argument("--markdown", action="store_true", help="tables as Markdown")
    parser.add_argument("--vocabulary", type=Path, help="another vocabulary.toml to compare")
    parser.add_argument("--no-semantic", action="store_true", help="skip the hybrid rankers")
    parser.add_argument("--db", help="database URL that keeps the catalog and its embeddings "
                        "between runs (default: a new temporary SQLite file)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    papers, engine = load_catalog(args.db)
    qrels = load_qrels()
    known = {p.id for p in papers}
    missing = sorted({pid for grades in qrels.values() for pid in grades} - known)
    if missing:  # the parser or the seeds changed: judgments would silently count as misses
        print(f"qrels name {len(missing)} papers the catalog lacks, e.g. {missing[0]}",
              file=sys.stderr)
        return 1
    vocabulary = (Vocabulary(tomllib.loads(args.vocabulary.read_text("utf-8")))
                  if args.vocabulary else None) or Vocabulary.load()
    rankers = build_rankers(papers, engine, vocabulary, semantic=not args.no_semantic)
    print(f"{len(papers)} papers ({time.perf_counter() - started:.1f} s to load and index)")
    for split in (("dev", "test") if args.split == "both" else (args.split,)):
        topics = load_topics(split)
        results = evaluate(rankers, topics, qrels)
        print_summary(results, split, args.markdown)
        if args.per_topic:
            print_topics(results, topics)
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
