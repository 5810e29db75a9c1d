"""Does a digest learn from its reader? A simulation on the labelled set (issue 14).

    .venv/bin/python benchmarks/relevance/feedback_sim.py [--split dev|test|testB]
        [--seeds 3] [--semantic] [--knob like=1.0 --knob hide=0.5 ...] [--per-topic]

The catalog is the seed pages (as ``evaluate.py`` loads them); each topic of the split is one
reader with that one topic and ``max_papers = 10``. The catalog is cut into 5 random slices
(one cut per seed, ``--seeds`` cuts): edition k is the digest ``select.build_digest`` makes
when only slice k is new (every other paper counts as already sent). After each edition the
reader marks every relevant paper they got (grade >= 1 in ``qrels.tsv``) "More like this" and
every other one "Less like this"; the next edition is built with those signals. Three readers
per topic and cut:

  control    no feedback ever: the digest the topics alone make
  feedback   the marks above, accumulated over the editions
  library    no marks, but 5 relevant papers (not in slice 1) given as their own papers

Each edition's digest is scored by nDCG@10 against the topic's judgments restricted to that
slice (an edition whose slice holds no relevant paper for the topic is left out). The report:
mean nDCG@10 per edition for each reader, edition 5 vs edition 1 and vs the control of the same
edition, and the topics that do worse with feedback than without (mean over the cuts of
editions 2-5). Tune knobs on ``--split dev`` only; score ``test`` with frozen knobs.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics  # noqa: E402  (the sibling module)
from evaluate import load_catalog, load_qrels, load_topics  # noqa: E402

from newsletter.models import OwnPaper, Paper, ReaderSignals, Subscriber
from newsletter.relevance.feedback import DEFAULT_KNOBS, Knobs
from newsletter.relevance.rank import Ranker
from newsletter.relevance.select import build_digest

EDITIONS = 5
OWN_PAPERS = 5
NOW = datetime(2026, 1, 1, tzinfo=UTC)
READERS = ("control", "feedback", "library")

Scores = dict[str, dict[str, list[list[float | None]]]]  # reader -> topic -> cut -> editions


def slices(papers: Sequence[Paper], seed: int) -> list[set[str]]:
    ids = sorted(p.id for p in papers)
    random.Random(seed).shuffle(ids)
    return [set(ids[k::EDITIONS]) for k in range(EDITIONS)]


def run_reader(ranker: Ranker, topic: str, cut: list[set[str]], grades: dict[str, int],
               kind: str, own: tuple[OwnPaper, ...], knobs: Knobs) -> list[float | None]:
    everyone = set().union(*cut)
    subscriber = Subscriber(email="reader@example.org", name="", topics=(topic,), max_papers=10)
    liked: list[str] = []
    hidden: list[str] = []
    found: list[float | None] = []
    for k, new in enumerate(cut):
        signals = ReaderSignals(liked=tuple(liked), hidden=tuple(hidden),
                                own=own if kind == "library" else ())
        digest = build_digest(subscriber, ranker, everyone - new, f"e{k}", NOW,
                              reader=signals, knobs=knobs)
        got = digest.paper_ids if digest else []
        mine = {p.paper_id for p in signals.own}  # never suggested to their own author
        judged = {pid: g for pid, g in grades.items() if pid in new and pid not in mine}
        found.append(metrics.ndcg(got, judged) if any(judged.values()) else None)
        if kind == "feedback":
            liked += [pid for pid in got if grades.get(pid, 0) > 0]
            hidden += [pid for pid in got if grades.get(pid, 0) <= 0]
    return found


def own_papers(ranker: Ranker, grades: dict[str, int], first: set[str],
               seed: int) -> tuple[OwnPaper, ...]:
    relevant = sorted(pid for pid, g in grades.items() if g > 0 and pid not in first)
    chosen = random.Random(seed).sample(relevant, min(OWN_PAPERS, len(relevant)))
    by_id = {p.id: p for p in ranker.papers}
    return tuple(OwnPaper(key=f"sim:{pid}", title=by_id[pid].title,
                          abstract=by_id[pid].abstract, paper_id=pid)
                 for pid in chosen if pid in by_id)


def simulate(ranker: Ranker, topics: Sequence[str], qrels: dict[str, dict[str, int]],
             seeds: int, knobs: Knobs) -> Scores:
    scores: Scores = {reader: {topic: [] for topic in topics} for reader in READERS}
    for seed in range(seeds):
        cut = slices(ranker.papers, seed)
        for topic in topics:
            grades = qrels.get(topic, {})
            own = own_papers(ranker, grades, cut[0], seed)
            for reader in READERS:
                scores[reader][topic].append(
                    run_reader(ranker, topic, cut, grades, reader, own, knobs))
    return scores


def mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def edition_mean(scores: Scores, reader: str, k: int) -> float | None:
    return mean([cut[k] for per_topic in scores[reader].values() for cut in per_topic])


def paired(scores: Scores, a: str, b: str, ka: int, kb: int) -> float | None:
    """Mean of a's edition ka minus b's edition kb, where both are scored."""
    diffs = [x[ka] - y[kb]  # type: ignore[operator]
             for topic in scores[a] for x, y in zip(scores[a][topic], scores[b][topic])
             if x[ka] is not None and y[kb] is not None]
    return mean(diffs)


def worse_topics(scores: Scores, reader: str = "feedback") -> list[tuple[str, float]]:
    """Topics whose editions 2-5 score lower with feedback than without (mean over cuts)."""
    worse = []
    for topic, cuts in scores[reader].items():
        diffs = [f - c for fb, ct in zip(cuts, scores["control"][topic])
                 for f, c in zip(fb[1:], ct[1:]) if f is not None and c is not None]
        delta = mean(diffs)
        if delta is not None and delta < -1e-9:
            worse.append((topic, delta))
    return sorted(worse, key=lambda tw: tw[1])


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}" if value < 0 or value > 0 else "0.000"


def report(scores: Scores, split: str, seeds: int, per_topic: bool) -> None:
    topics = len(scores["control"])
    print(f"{split}: {topics} topics x {seeds} cuts, {EDITIONS} editions, mean nDCG@10")
    print(f"{'reader':10s}" + "".join(f"{'ed ' + str(k + 1):>9s}" for k in range(EDITIONS)))
    for reader in READERS:
        row = [edition_mean(scores, reader, k) for k in range(EDITIONS)]
        print(f"{reader:10s}" + "".join(f"{v:9.3f}" if v is not None else f"{'-':>9s}"
                                         for v in row))
    last = EDITIONS - 1
    print(f"feedback ed 5 - ed 1 (paired):           {fmt(paired(scores, 'feedback', 'feedback', last, 0))}")
    print(f"feedback ed 5 - control ed 5:            {fmt(paired(scores, 'feedback', 'control', last, last))}")
    later = mean([paired(scores, "feedback", "control", k, k) for k in range(1, EDITIONS)])
    print(f"feedback - control, eds 2-5:             {fmt(later)}")
    print(f"library ed 1 - control ed 1:             {fmt(paired(scores, 'library', 'control', 0, 0))}")
    worse = worse_topics(scores)
    print(f"topics worse with feedback (eds 2-5):    {len(worse)}"
          + "".join(f"\n  {topic}: {delta:+.3f}" for topic, delta in worse))
    if per_topic:
        print("\nper topic: control / feedback, editions 2-5 (mean over cuts)")
        for topic in scores["control"]:
            c = mean([v for cut in scores["control"][topic] for v in cut[1:]])
            f = mean([v for cut in scores["feedback"][topic] for v in cut[1:]])
            print(f"  {topic[:50]:50s} {fmt(c):>7s} {fmt(f):>7s}")


def parse_knobs(pairs: Sequence[str]) -> Knobs:
    types = {f.name: type(getattr(DEFAULT_KNOBS, f.name)) for f in fields(Knobs)}
    changes = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in types:
            raise SystemExit(f"--knob {pair}: no such knob (one of {', '.join(types)})")
        changes[name] = types[name](value)
    return replace(DEFAULT_KNOBS, **changes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev")
    parser.add_argument("--seeds", type=int, default=3, help="random cuts of the catalog")
    parser.add_argument("--semantic", action="store_true", help="with MiniLM embeddings")
    parser.add_argument("--knob", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--per-topic", action="store_true")
    args = parser.parse_args(argv)
    papers, engine = load_catalog()
    index = None
    if args.semantic:
        from newsletter.relevance.semantic import build_index

        index = build_index(papers, engine)
    ranker = Ranker(papers, semantic=index)
    topics = load_topics(args.split)
    if not topics:
        raise SystemExit(f"no topics in split {args.split!r} (topics.tsv)")
    knobs = parse_knobs(args.knob)
    scores = simulate(ranker, topics, load_qrels(), args.seeds, knobs)
    print(f"knobs: {knobs}")
    report(scores, args.split, args.seeds, args.per_topic)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
