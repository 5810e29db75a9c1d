"""How long ranking the whole catalog takes for many subscribers, on the lexical path.

    .venv/bin/python benchmarks/relevance/scale.py [--subscribers 10000] [--copies 1]
        [--hybrid]

Subscribers get 3 topics each from a pool of topics as people type them, spelling variants
included ("GNN", "GNNs", "graph neural networks"), so identical topics share work through the
ranker's memo, as they do in ``send``. Times the index build, then ``Ranker.recommend`` for every
subscriber, then ``select.build_digest`` (what ``send`` runs) for every subscriber.
``--copies N`` repeats the catalog N times (new ids) to see how it grows with catalog size.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate  # noqa: E402

from newsletter.models import Subscriber  # noqa: E402
from newsletter.relevance.duplicates import diversify  # noqa: E402
from newsletter.relevance.rank import Ranker, build_ranker  # noqa: E402
from newsletter.relevance.select import build_digest, edition_for  # noqa: E402

TOPICS = [
    "GNN", "GNNs", "graph neural networks", "Graph Neural Networks", "PINNs", "PINN",
    "physics-informed neural networks", "INR", "neural fields", "implicit neural representations",
    "NAS", "neural architecture search", "DARTS", "optimal transport", "OT", "Sinkhorn",
    "causal discovery", "structure learning", "neural operators", "operator learning",
    "differentiable rendering", "inverse rendering", "low-bit networks", "quantization",
    "binary neural networks", "learning to sort", "differentiable sorting",
    "infinite-width networks", "NTK", "neural tangent kernel", "GFlowNets", "MoE",
    "mixture of experts", "uncertainty calibration", "calibration", "weight-space learning",
    "hypernetworks", "LLMs", "large language models", "diffusion models", "transformers",
    "ViT", "reinforcement learning", "RL", "Bayesian neural networks", "BNN", "SNN",
    "spiking neural networks", "contrastive learning", "self-supervised learning",
    "federated learning", "pruning", "knowledge distillation", "KD", "equivariant networks",
    "point clouds", "NeRF", "state space models", "SSM", "Mamba",
]


def subscribers(count: int, seed: int = 7) -> list[Subscriber]:
    rng = random.Random(seed)
    return [Subscriber(email=f"s{i}@example.org", name=f"S{i}",
                       topics=tuple(rng.sample(TOPICS, 3)), max_papers=10)
            for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--copies", type=int, default=1, help="repeat the catalog N times")
    parser.add_argument("--hybrid", action="store_true", help="with embeddings (needs extra)")
    parser.add_argument("--db", help="database URL caching the catalog and embeddings")
    args = parser.parse_args(argv)
    seeds, engine = evaluate.load_catalog(args.db)
    papers = [replace(p, id=f"{p.id}~{n}") if n else p
              for n in range(args.copies) for p in seeds]
    people = subscribers(args.subscribers)
    distinct = len({t for s in people for t in s.topics})
    print(f"{len(papers)} papers, {len(people)} subscribers, {distinct} distinct topics")

    started = time.perf_counter()
    ranker = build_ranker(papers, engine if args.copies == 1 else None) if args.hybrid \
        else Ranker(papers)
    built = time.perf_counter()
    for person in people:
        ranker.recommend(person.topics, person.max_papers)
    recommended = time.perf_counter()
    print(f"index built in {built - started:.2f} s; recommend for all: "
          f"{recommended - built:.2f} s (topics ranked once, then shared)")
    started = time.perf_counter()
    for person in people:  # what a diversified digest adds: 20 candidates down to 10
        diversify(ranker.recommend(person.topics, 2 * person.max_papers), person.max_papers,
                  ranker.similarity, ranker.duplicate_threshold)
    print(f"recommend 20 + diversify to 10, for all: {time.perf_counter() - started:.2f} s")

    fresh = Ranker(papers) if not args.hybrid else ranker  # select's memo starts empty
    now = datetime(2026, 11, 23, 7, tzinfo=UTC)
    started = time.perf_counter()
    digests = sum(build_digest(p, fresh, (), edition_for(p, now), now) is not None
                  for p in people)
    print(f"build_digest for all: {time.perf_counter() - started:.2f} s "
          f"({digests} digests, the rest had nothing relevant)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
