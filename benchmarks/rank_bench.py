"""Ranking a large catalog: the send benchmark's 194 topics, each ranked once over N synthetic
papers (``synth.py``, from the seed pages), words only. Prints the index build and ranking CPU
seconds and the peak RSS. To measure another copy of the package, put it first on PYTHONPATH.

    .venv/bin/python benchmarks/rank_bench.py --papers 50000
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth  # noqa: E402  (the sibling module)

import newsletter
from newsletter.relevance.rank import Ranker

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    now = datetime(2026, 12, 5, 6, tzinfo=UTC)
    papers = synth.synth_papers(synth.seed_papers(ROOT / "seeds"), args.papers, 300, now,
                                random.Random(args.seed))
    start = time.process_time()
    ranker = Ranker(papers, semantic=None)
    indexed = time.process_time()
    matches = sum(len(ranker.rank(topic)) for topic in synth.TOPICS)
    ranked = time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"package {Path(newsletter.__file__).parent}")
    print(f"{args.papers:,} papers, {len(synth.TOPICS)} topics: index {indexed - start:.1f} s, "
          f"ranking {ranked - indexed:.1f} s CPU, {matches:,} matches, peak RSS {peak} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
