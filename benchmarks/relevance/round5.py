"""Round five of issue 13: ranker variants cross-validated on all 151 labelled topics (tune5).

    .venv/bin/python benchmarks/relevance/round5.py [--only NAME ...] [--list]

Each variant is the frozen design (``fit.py``'s candidates, features and logistic model)
with one change, refitted on the training folds of 5-fold cross-validation by topic (fold
shuffle seed 7) and judged by the rule fixed before any variant was measured (README, "Round
five"): S = nDCG@10 + 0.3 R@20 at the best threshold whose P(20 shown) reaches the baseline's,
a margin of 0.01 over the baseline, and wins on at least 7 of 10 fold shuffles (seeds 1-10).
Words only (the default install). Nothing here changes the ranker: knobs are set on a fresh
``Ranker`` per variant, module constants are set and restored around it.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate  # noqa: E402
import fit  # noqa: E402
import metrics  # noqa: E402

from newsletter.relevance import calibrate, expand
from newsletter.relevance.rank import Ranker
from newsletter.relevance.score import DEFAULT

FOLDS, SEED, SHUFFLES = 5, 7, range(1, 11)
LEARNED, PROPOSED = calibrate.FEATURES.index("learned"), calibrate.FEATURES.index(
    "facet_candidate")
Table = dict[str, tuple[list[int], Any, Any, Any]]  # topic -> docs, features, grades, rows


@dataclass(frozen=True)
class Variant:
    knobs: dict[str, float] = field(default_factory=dict)  # score.Weights fields
    constants: dict[tuple[Any, str], int] = field(default_factory=dict)  # (module, name)
    learned_floor: float | None = None  # learned-only papers count for KEEP/FEW from this P
    # (None: as now, every facet candidate counts; 2.0: never)
    extra: Callable[[Ranker, Table], Table] | None = None  # added feature columns
    weights: str = "candidate"  # fit.fit's sample weights ("sqrt": 1/sqrt(candidates))
    adaptive: float = 0.0  # threshold - b x (log(1 + expected relevant) - its median)


def centroid_similarity(ranker: Ranker, data: Table, k: int = 5) -> Table:
    """Document-level pseudo-relevance feedback as a feature: each candidate's cosine with the
    score-weighted centroid of the topic's k best papers by facet score (unit tf-idf vectors,
    ``Index.term_vector``), absolute and relative to the best candidate's."""
    import numpy as np

    index, out = ranker.index, {}
    for topic, (docs, x, grades, scores) in data.items():
        if not docs:
            out[topic] = data[topic]
            continue
        seeds = heapq.nsmallest(k, scores, key=lambda d: (-scores[d], d))
        total = sum(scores[d] for d in seeds) or 1.0
        centre: dict[str, float] = {}
        for doc in seeds:
            for term, value in index.term_vector(doc).items():
                centre[term] = centre.get(term, 0.0) + value * scores[doc] / total
        norm = math.sqrt(sum(v * v for v in centre.values())) or 1.0
        sims = np.array([sum(v * centre.get(t, 0.0) for t, v in index.term_vector(d).items())
                         / norm for d in docs])
        out[topic] = (docs, np.column_stack([x, sims, sims / (sims.max() or 1.0)]), grades,
                      scores)
    return out


OLD = {"expansion": DEFAULT.expansion, "qualifier": DEFAULT.qualifier}
VARIANTS: dict[str, Variant] = {
    "baseline (frozen design refitted)": Variant(),
    "document-level PRF: centroid similarity": Variant(extra=centroid_similarity),
    "threshold - 0.1 x (log expected - median)": Variant(adaptive=0.1),
    "threshold - 0.2 x (log expected - median)": Variant(adaptive=0.2),
    "1/sqrt(candidates) weights": Variant(weights="sqrt"),
    "topic weights": Variant(weights="topic"),
    "WIDEN 80": Variant(constants={(calibrate, "WIDEN"): 80}),
    "FEEDBACK_WORDS 16": Variant(constants={(expand, "FEEDBACK_WORDS"): 16}),
    "FEEDBACK_PAPERS 12": Variant(constants={(expand, "FEEDBACK_PAPERS"): 12}),
    "qualifier 0.6": Variant(knobs={"qualifier": 0.6}),
    "learned words at 0.7": Variant(knobs={"expansion": 0.7}),
    "learned words at 1.0": Variant(knobs={"expansion": 1.0}),
    "learned words at 1.5": Variant(knobs={"expansion": 1.5}),
    "learned 1.0, qualifier 0.7": Variant(knobs={"expansion": 1.0, "qualifier": 0.7}),
    "learned-only papers never count for KEEP/FEW": Variant(learned_floor=2.0),
    "learned 1.0, qualifier 0.7, learned-only never KEEP/FEW": Variant(
        knobs={"expansion": 1.0, "qualifier": 0.7}, learned_floor=2.0),
    "learned 1.0, qualifier 0.7, learned-only KEEP/FEW if P >= 0.3": Variant(
        knobs={"expansion": 1.0, "qualifier": 0.7}, learned_floor=0.3),
}


@contextmanager
def constants(values: dict[tuple[Any, str], int]) -> Iterator[None]:
    held = {key: getattr(*key) for key in values}
    try:
        for (module, name), value in values.items():
            setattr(module, name, value)
        yield
    finally:
        for (module, name), value in held.items():
            setattr(module, name, value)


def table(variant: Variant, papers: list[Any], topics: list[str], qrels: dict) -> tuple[
        Ranker, Table]:
    with constants(variant.constants):
        ranker = Ranker(papers, semantic=None, weights=replace(DEFAULT, **variant.knobs))
        data = fit.table(ranker, topics, qrels)  # docs, features, grades, facet scores
    data = variant.extra(ranker, data) if variant.extra else data
    return ranker, data


def chances(variant: Variant, data: Table, topics: list[str], seed: int) -> dict[str, dict]:
    """Each topic's candidates' probabilities from the model fitted without its fold."""
    import numpy as np

    shuffled = list(topics)
    random.Random(seed).shuffle(shuffled)
    out = {}
    for fold in (shuffled[i::FOLDS] for i in range(FOLDS)):
        model = fit_model(data, [t for t in topics if t not in fold], variant.weights)
        for topic in fold:
            docs, x = data[topic][0], data[topic][1]
            z = model[3] + ((x - model[0]) / model[1]) @ model[2] if docs else np.zeros(0)
            out[topic] = dict(zip(docs, (1 / (1 + np.exp(-np.clip(z, -30, 30)))).tolist()))
    return out


def fit_model(data: Table, topics: list[str], weights: str) -> tuple[Any, Any, Any, float]:
    """``fit.fit``'s model (same C, grade 2 twice), any number of columns, plus 1/sqrt."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([data[t][1] for t in topics if data[t][0]])
    g = np.concatenate([data[t][2] for t in topics])
    w = np.where(g == 2, 2.0, 1.0)
    if weights != "candidate":
        sizes = np.concatenate([np.full(len(data[t][0]), len(data[t][0])) for t in topics])
        w = w / (sizes if weights == "topic" else np.sqrt(sizes))
        w = w * len(w) / w.sum()
    mean, scale = x.mean(0), x.std(0) + 1e-9
    model = LogisticRegression(C=fit.C, max_iter=5000).fit(
        (x - mean) / scale, (g >= 1).astype(int), sample_weight=w)
    return mean, scale, model.coef_[0], float(model.intercept_[0])


def scores(variant: Variant, ranker: Ranker, data: Table, topics: list[str], qrels: dict,
           seed: int, thresholds: tuple[float, ...]) -> dict[float, metrics.Summary]:
    found = chances(variant, data, topics, seed)
    expected = {t: math.log1p(sum(c.values())) for t, c in found.items()}
    middle = sorted(expected.values())[len(expected) // 2]
    out = {}
    for threshold in thresholds:
        per = {}
        for topic in topics:
            docs, x, _, facet = data[topic]
            chance = found[topic]
            proposed = {d for d, row in zip(docs, x) if row[PROPOSED] and (
                variant.learned_floor is None or not row[LEARNED]
                or chance[d] >= variant.learned_floor)}
            cut = threshold - variant.adaptive * (expected[topic] - middle)
            with constants({(calibrate, "THRESHOLD"): cut}):
                kept = sorted(calibrate.admitted(chance, proposed), key=lambda d: (-chance[d], d))
            per[topic] = metrics.score([ranker.papers[d].id for d in kept], qrels.get(topic, {}))
        out[threshold] = metrics.summarize(per)
    return out


def s(summary: metrics.Summary) -> float:
    return summary.ndcg10 + 0.3 * summary.r20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="variants whose name contains one of these")
    parser.add_argument("--list", action="store_true", help="list the variants and stop")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(VARIANTS))
        return 0
    papers, _ = evaluate.load_catalog()
    topics = evaluate.load_topics("tune5")
    qrels = {t: g for t, g in evaluate.load_qrels().items() if t in topics}
    base = VARIANTS["baseline (frozen design refitted)"]
    ranker, data = table(base, papers, topics, qrels)
    curve = scores(base, ranker, data, topics, qrels, SEED, fit.THRESHOLDS)
    good = [t for t in fit.THRESHOLDS if curve[t].precision20 >= 0.8]
    cut = max(good, key=lambda t: (s(curve[t]), -t)) if good else 0.5
    floor = curve[cut].precision20
    shuffled = {k: scores(base, ranker, data, topics, qrels, k, (cut,))[cut] for k in SHUFFLES}
    print(f"baseline threshold {cut}, P(20 shown) {floor:.4f}; over {len(SHUFFLES)} shuffles "
          f"S {sum(map(s, shuffled.values())) / len(SHUFFLES):.4f}")
    print("| variant (CV on tune5, words) | threshold | S | nDCG@10 | R@20 | P(20 shown) | "
          "10+ short | S at 0.5 (P) | shuffles won, mean S, mean P |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, variant in VARIANTS.items():
        if args.only and not any(part in name for part in args.only):
            continue
        ranker, data = table(variant, papers, topics, qrels)
        curve = scores(variant, ranker, data, topics, qrels, SEED, fit.THRESHOLDS)
        ok = [t for t in fit.THRESHOLDS if curve[t].precision20 >= floor - 1e-12]
        half = f"{s(curve[0.5]):.4f} ({curve[0.5].precision20:.3f})"
        if not ok:
            print(f"| {name} | none reaches {floor:.3f} | | | | | | {half} | |")
            continue
        best = max(ok, key=lambda t: (s(curve[t]), -t))
        again = [scores(variant, ranker, data, topics, qrels, k, (best,))[best] for k in SHUFFLES]
        won = sum(s(a) > s(shuffled[k]) for a, k in zip(again, SHUFFLES))
        c = curve[best]
        print(f"| {name} | {best} | {s(c):.4f} | {c.ndcg10:.3f} | {c.r20:.3f} | "
              f"{c.precision20:.3f} | {len(c.short)} | {half} | {won}/10, "
              f"{sum(map(s, again)) / len(again):.4f}, "
              f"{sum(a.precision20 for a in again) / len(again):.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
