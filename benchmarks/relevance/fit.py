"""Fit the relevance model of ``newsletter/relevance/calibrate.py`` on the tune topics only.

    .venv/bin/python benchmarks/relevance/fit.py [--db URL] [--widen K ...] [--write]

Round five of issue 13 tunes on ``tune5`` (dev, test, testB, testC and the spent testD: 151
topics; round four tuned on ``tune4``, 121, round three on ``tune``, 92). Test-E's and test-F's
topics and judgments are never read here.
``--widen`` lists the candidate widenings (``calibrate.WIDEN``) to cross-validate; the last one
is fitted and written; ``--keep``/``--few`` set ``calibrate.KEEP``/``FEW`` for the
cross-validation only. For every topic the ranker's candidates and their features
(``TopicScorer.candidates``) are labelled by qrels.tsv (grade >= 1; grade 2 weighs twice), and
a logistic regression (scikit-learn, a benchmark-only dependency) is fitted, every candidate
counting once (``--weights candidate``, the frozen design; ``topic``: each topic weighs as much
as any other, measured in round four and not kept): one model on words
alone, one with MiniLM closeness when the semantic extra is installed. The script prints the
5-fold cross-validated figures (folds by topic: the model never sees the topic it scores) at a
few thresholds, then, with ``--write``, rewrites the models block of calibrate.py.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate  # noqa: E402
import metrics  # noqa: E402

from newsletter.relevance import calibrate
from newsletter.relevance.rank import Ranker

THRESHOLDS = tuple(round(0.35 + 0.025 * i, 3) for i in range(15))  # 0.35 .. 0.7
# The rule of rounds three and four: the threshold with the best nDCG@10 + 0.3 R@20 among those
# whose cross-validated P(20 shown) reaches 0.8 (words alone). The frozen one (0.5) was chosen
# so on tune in round three (grid 0.35 .. 0.55); round four kept it (README, round four).
C = 0.3  # inverse regularization strength
FOLDS = 5
MODULE = Path(calibrate.__file__)


def table(ranker: Ranker, topics: list[str], qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
    import numpy as np

    data = {}
    for topic in topics:
        query = ranker.understand(topic)
        docs, rows, scores = ranker._scorer.candidates(query)
        grades = np.array([qrels.get(topic, {}).get(ranker.papers[d].id, 0) for d in docs])
        width = len(calibrate.FEATURES) + (ranker.semantic is not None)
        data[topic] = (docs, np.array(rows, dtype=float).reshape(len(docs), width), grades,
                       scores)
    return data


def fit(data: dict[str, Any], topics: list[str], weights: str = "candidate") -> Any:
    """Grade 2 weighs twice grade 1; with ``weights="topic"`` each topic's candidates share
    one topic's weight (1 / their number, rescaled to a mean of 1), so a broad topic with 100
    candidates does not count ten times a narrow one with 10."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([data[t][1] for t in topics if len(data[t][0])])
    g = np.concatenate([data[t][2] for t in topics])
    w = np.where(g == 2, 2.0, 1.0)
    if weights == "topic":
        w = w / np.concatenate([np.full(len(data[t][0]), len(data[t][0])) for t in topics])
        w = w * len(w) / w.sum()
    mean, scale = x.mean(0), x.std(0) + 1e-9
    model = LogisticRegression(C=C, max_iter=5000).fit(
        (x - mean) / scale, (g >= 1).astype(int), sample_weight=w)
    words = x.shape[1] == len(calibrate.FEATURES)
    return calibrate.Model(calibrate.FEATURES + (() if words else (calibrate.MEANING,)),
                           tuple(map(float, mean)), tuple(map(float, scale)),
                           tuple(map(float, model.coef_[0])), float(model.intercept_[0]))


def ranked(data: dict[str, Any], models: dict[str, calibrate.Model], ranker: Ranker,
           threshold: float):
    admit = ranker._scorer.w.admit

    def rank(topic: str) -> list[str]:
        docs, rows, _, scores = data[topic]
        chances = {d: models[topic].probability(row) for d, row in zip(docs, rows)}
        proposed = {d for d in docs if scores.get(d, 0.0) >= admit}
        held, calibrate.THRESHOLD = calibrate.THRESHOLD, threshold
        try:
            keep = sorted(calibrate.admitted(chances, proposed), key=lambda d: (-chances[d], d))
        finally:
            calibrate.THRESHOLD = held
        return [ranker.papers[d].id for d in keep]
    return rank


def cross_validate(data: dict[str, Any], topics: list[str], qrels, ranker: Ranker,
                   weights: str = "candidate", seed: int = 7) -> None:
    shuffled = list(topics)
    random.Random(seed).shuffle(shuffled)
    folds = [shuffled[i::FOLDS] for i in range(FOLDS)]
    models = {}
    for fold in folds:
        model = fit(data, [t for t in topics if t not in fold], weights)
        models.update({t: model for t in fold})
    for threshold in THRESHOLDS:
        rank = ranked(data, models, ranker, threshold)
        s = metrics.summarize({t: metrics.score(rank(t), qrels.get(t, {})) for t in topics})
        print(f"  threshold {threshold:.3f}: score {s.ndcg10 + 0.3 * s.r20:.3f}", end="")
        print(f"  nDCG@10 {s.ndcg10:.3f}  R@20 {s.r20:.3f}  "
              f"P(20 shown) {s.precision20:.3f}  empty {s.empty}  off-topic "
              f"{s.off_topic_returning}  10+ short {len(s.short)}")


def source(name: str, model: calibrate.Model) -> str:
    def floats(values: tuple[float, ...]) -> str:
        lines = textwrap.wrap(", ".join(f"{v:.6g}" for v in values), 86)
        return "(" + "\n     ".join(lines) + ")"
    names = "FEATURES" if model.names == calibrate.FEATURES else "(*FEATURES, MEANING)"
    return (f"{name} = Model(\n    {names},\n    {floats(model.mean)},\n"
            f"    {floats(model.scale)},\n    {floats(model.coef)},\n"
            f"    {model.intercept:.6g})\n")


def write(models: dict[str, calibrate.Model], threshold: float) -> None:
    text = MODULE.read_text("utf-8")
    block = "".join(source(n, m) for n, m in models.items()) + f"THRESHOLD = {threshold}\n"
    text = re.sub(r"(# BEGIN MODELS\n).*?(# END MODELS)", lambda m: m[1] + block + m[2], text,
                  flags=re.DOTALL)
    MODULE.write_text(text, "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL with the catalog and embeddings cached")
    parser.add_argument("--write", action="store_true", help="rewrite calibrate.py's models")
    parser.add_argument("--threshold", type=float, default=calibrate.THRESHOLD)
    parser.add_argument("--widen", type=int, nargs="*", default=[calibrate.WIDEN])
    parser.add_argument("--words-only", action="store_true", help="skip the MiniLM model")
    parser.add_argument("--weights", choices=("candidate", "topic"), default="candidate",
                        help="each candidate counts once (frozen) or each topic the same")
    parser.add_argument("--keep", type=int, default=calibrate.KEEP, help="calibrate.KEEP")
    parser.add_argument("--few", type=int, default=calibrate.FEW, help="calibrate.FEW")
    parser.add_argument("--seed", type=int, default=7, help="the folds' shuffle (the rule's: 7)")
    args = parser.parse_args(argv)
    calibrate.KEEP, calibrate.FEW = args.keep, args.few
    papers, engine = evaluate.load_catalog(args.db)
    topics = evaluate.load_topics("tune5")
    assert topics and not set(topics) & set(evaluate.load_topics("testE"))  # never test-E
    assert not set(topics) & set(evaluate.load_topics("testF"))  # never test-F
    assert not set(topics) & set(evaluate.load_topics("testG"))  # never test-G
    qrels = {t: g for t, g in evaluate.load_qrels().items() if t in topics}  # no test-E/F/G row
    rankers = {"WORDS": Ranker(papers, semantic=None)}
    try:
        if args.words_only:
            raise ImportError
        from newsletter.relevance.semantic import build_index

        rankers["WITH_MEANING"] = Ranker(papers, semantic=build_index(papers, engine))
    except ImportError:
        print("no semantic extra: WITH_MEANING is left as it is", file=sys.stderr)
    fitted = {}
    for name, ranker in rankers.items():
        for widen in args.widen:
            calibrate.WIDEN = widen
            data = table(ranker, topics, qrels)
            print(f"{name}, widen {widen}: 5-fold cross-validation on {len(topics)} tune topics")
            cross_validate(data, topics, qrels, ranker, args.weights, args.seed)
        fitted[name] = fit(data, topics, args.weights)
    if args.write:
        current = {"WORDS": calibrate.WORDS, "WITH_MEANING": calibrate.WITH_MEANING}
        write({**current, **fitted}, args.threshold)
        print(f"wrote {MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
