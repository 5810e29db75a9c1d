"""The judging pool of each topic (TREC style), and a check of qrels.tsv against it.

    .venv/bin/python benchmarks/relevance/pool.py [--db URL] [--depth 40] [--write]

Pool = the union of the top ``depth`` papers of every ranker evaluate.py runs, plus every
paper the hand-written patterns below find in its title or abstract. Every pooled paper must
have been read and judged: the script lists pooled papers that qrels.tsv lacks (a ranker
changed and found something new: read it, judge it, add a row) and, with ``--write``, adds a
grade-0 row for each pooled paper that the exhaustive pass judged not relevant, so the file
shows what was looked at and rejected. It never assigns a grade above 0: grades come from
reading (README.md).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate  # noqa: E402  (the sibling script: same catalog, same rankers)

# Keyword and synonym patterns written by hand per topic, to pool papers no ranker returns.
PATTERNS: dict[str, str] = {
    "GNN": r"graph neural|\bgnns?\b|graph convolution|message[- ]passing|hypergraph|sheaf|"
           r"node classification|link prediction|node embedding|graph attention",
    "PINNs": r"physics[- ]informed|\bpinns?\b|pde residual|governing equation",
    "INR": r"implicit neural|neural field|\binrs?\b|nerf|radiance field|signed distance|"
           r"unsigned distance|\bsdf|\budf|implicit (surface|function|field)|coordinate",
    "NAS": r"architecture search|\bnas\b|darts|supernet|super-network|zero-cost|search space",
    "optimal transport": r"optimal transport|wasserstein|sinkhorn|schr.dinger|monge|brenier",
    "causal discovery": r"causal|\bdags?\b|acyclic|notears|structure learning",
    "neural operators": r"operator|deeponet|function spaces?|pde|partial differential",
    "differentiable rendering": r"render|inverse graphics|ray[- ]trac|rasteri",
    "low-bit networks": r"quantiz|quantis|binar|low[- ]bit|bit[- ]width|low[- ]precision|"
                        r"\bint[48]\b|\d-bit|one[- ]bit|mixed[- ]precision",
    "learning to sort": r"sort|permutation|ranking|top-k|ordering",
    "infinite-width networks": r"infinite[- ]width|infinitely wide|\bntk\b|neural tangent|nngp|"
                               r"wide (neural )?networks?|mean[- ]field|lazy|kernel regime|"
                               r"large width|width",
    "GFlowNets": r"gflownet|generative flow network|flow network",
    "MoE": r"expert|mixture|routing|router|gating|conditional computation|sparsely activated",
    "uncertainty calibration": r"calibrat|uncertaint|confidence|conformal",
    "weight-space learning": r"weight space|hypernetwork|metanetwork|parameters of (other )?"
                             r"neural|network weights|parameter prediction|weights? (as|of) "
                             r"(input|other)|symmetr",
}


def pools(depth: int, db: str | None) -> tuple[dict[str, set[str]], dict[str, dict[str, int]],
                                               dict[str, str]]:
    papers, engine = evaluate.load_catalog(db)
    titles = {p.id: p.title for p in papers}
    vocabulary = evaluate.Vocabulary.load()
    rankers = evaluate.build_rankers(papers, engine, vocabulary, semantic=True)
    qrels = evaluate.load_qrels()
    pooled: dict[str, set[str]] = {}
    for topic in evaluate.load_topics():
        pool = {pid for rank in rankers.values() for pid in rank(topic)[:depth]}
        pattern = re.compile(PATTERNS[topic], re.IGNORECASE)
        pool |= {p.id for p in papers if pattern.search(f"{p.title} {p.abstract}")}
        pooled[topic] = pool
    return pooled, qrels, titles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL with the catalog and embeddings cached")
    parser.add_argument("--depth", type=int, default=40, help="top papers pooled per ranker")
    parser.add_argument("--write", action="store_true",
                        help="add grade-0 rows for pooled papers judged not relevant")
    args = parser.parse_args(argv)
    pooled, qrels, titles = pools(args.depth, args.db)
    path = evaluate.HERE / "qrels.tsv"
    listed = {(line.split("\t")[0], line.split("\t")[1])
              for line in path.read_text("utf-8").splitlines()[1:] if line.strip()}
    added: list[str] = []
    for topic, pool in pooled.items():
        relevant = {pid for pid, g in qrels.get(topic, {}).items() if g > 0}
        outside = relevant - pool
        print(f"{topic:26s} pool {len(pool):3d}  relevant {len(relevant):3d}  "
              f"relevant outside the pool {len(outside)}")
        for pid in sorted(outside):
            print(f"    not pooled: {titles[pid]}")
        added += [f"{topic}\t{pid}\t0\tpooled; judged not relevant"
                  for pid in sorted(pool) if (topic, pid) not in listed]
    if args.write and added:
        with path.open("a", encoding="utf-8") as out:
            out.write("".join(f"{row}\n" for row in added))
        print(f"added {len(added)} grade-0 rows to {path.name}")
    elif added:
        print(f"{len(added)} pooled papers have no row (all judged 0 in the exhaustive pass; "
              f"--write adds them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
