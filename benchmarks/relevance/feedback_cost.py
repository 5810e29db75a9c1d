"""What a reader's feedback costs one digest: ``build_digest`` with and without signals.

    .venv/bin/python benchmarks/relevance/feedback_cost.py [--papers 50000] [--subscribers 10000]
        [--share 0.1]

The catalog and subscribers are ``benchmarks/synth.py``'s (as in ``send_bench.py``), the papers
of the last ``--window-days`` ranked by words (what a run ranks, on the send benchmark's path). Every digest is built once without signals (the topics'
rankings are memoized then, as in a run); then ``--share`` of the subscribers get 3 liked and 2
hidden papers from that digest and 2 own papers (one catalog paper by arXiv id, one known by
its text only), and their next digests (the first one's papers sent) are timed: without signals,
with signals the first
time (each hidden paper's near-duplicates found: once per run per paper), and with
the same signals again (the per-paper work shared, what a reader costs when others liked the
same papers).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import synth  # noqa: E402  (benchmarks/synth.py)

from newsletter.models import OwnPaper, ReaderSignals  # noqa: E402
from newsletter.relevance.rank import Ranker  # noqa: E402
from newsletter.relevance.select import build_digest, edition_for  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=50_000)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--window-days", type=float, default=14.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    now = datetime.now(UTC).replace(microsecond=0)
    papers = synth.synth_papers(synth.seed_papers(HERE.parents[1] / "seeds"), args.papers, 300,
                                now, rng)
    people = [p.__class__(**{**{f: getattr(p, f) for f in p.__slots__}, "id": i})
              for i, p in enumerate(synth.synth_subscribers(args.subscribers, rng))]
    since = now - timedelta(days=args.window_days)  # what a run ranks (Pipeline.build)
    papers = [p for p in papers if p.first_seen_at and p.first_seen_at >= since]
    started = time.perf_counter()
    ranker = Ranker(papers)
    print(f"{len(papers):,} papers of the last {args.window_days:g} days indexed in {time.perf_counter() - started:.1f}s")
    started = time.perf_counter()
    first = {p.id: build_digest(p, ranker, (), edition_for(p, now), now) for p in people}
    print(f"{len(people):,} digests without signals (topics ranked once): "
          f"{time.perf_counter() - started:.1f}s")
    readers = [p for p in rng.sample(people, round(len(people) * args.share)) if first[p.id]]
    signals = {}
    for person in readers:
        got = first[person.id].paper_ids
        marked = rng.sample(got, min(5, len(got)))
        mine, text = rng.sample(papers, 2)
        signals[person.id] = ReaderSignals(
            liked=tuple(marked[:3]), hidden=tuple(marked[3:]),
            own=(OwnPaper(key=f"arxiv:{mine.id}", title=""),
                 OwnPaper(key=f"bench{person.id}", title=text.title, abstract=text.abstract)))
    timings = {}
    for label, with_signals in (("without signals", False), ("with signals, cold", True),
                                ("with signals, warm", True), ("without signals, again", False)):
        started = time.perf_counter()
        for person in readers:
            sent = set(first[person.id].paper_ids)  # the papers they marked were sent
            build_digest(person, ranker, sent, edition_for(person, now), now,
                         reader=signals[person.id] if with_signals else None)
        timings[label] = (time.perf_counter() - started) / max(len(readers), 1) * 1000
        print(f"{len(readers):,} readers' digests {label}: {timings[label]:.2f} ms each")
    extra = timings["with signals, cold"] - timings["without signals, again"]
    print(f"feedback costs {extra:.2f} ms per reader's digest on a fresh run "
          f"({timings['with signals, warm'] - timings['without signals, again']:.2f} ms once "
          "the papers' neighbours are known)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
