"""Scores of one ranked list against graded judgments, and their means over a split.

A ranked list is what a ranker returns for a topic, best first. Rankers that decide relevance
return only what they admit (a digest draws from that set); reference rankers order the whole
catalog. ``recommend --limit 20`` shows the first 20 of the list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LIMIT = 20  # what `newsletter recommend --limit 20` shows
MANY = 10  # a topic with this many relevant papers must show at least MIN_SHOWN of them
MIN_SHOWN = 8


def ndcg(ranked: Sequence[str], grades: dict[str, int], k: int = 10) -> float:
    """Linear gains (trec_eval's), log2 discount; the ideal is every judged paper in grade order."""
    dcg = sum(grades.get(pid, 0) / math.log2(i + 2) for i, pid in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / best if best else 0.0


@dataclass(frozen=True)
class Scores:
    relevant: int  # judged grade >= 1
    returned: int  # length of the list
    ndcg10: float
    p10: float  # a short list counts the missing places as misses
    r20: float
    shown: int  # relevant papers among the first LIMIT (what recommend --limit 20 shows)
    precision20: float | None  # of the first LIMIT returned; None when nothing is returned
    set_precision: float | None  # of everything returned; None when nothing is returned
    set_recall: float


def score(ranked: Sequence[str], grades: dict[str, int]) -> Scores:
    relevant = {pid for pid, g in grades.items() if g > 0}
    top = ranked[:LIMIT]
    shown = len(relevant.intersection(top))
    found = len(relevant.intersection(ranked))
    return Scores(
        relevant=len(relevant), returned=len(ranked), ndcg10=ndcg(ranked, grades),
        p10=sum(grades.get(pid, 0) > 0 for pid in ranked[:10]) / 10,
        r20=shown / len(relevant) if relevant else 0.0, shown=shown,
        precision20=shown / len(top) if top else None,
        set_precision=found / len(ranked) if ranked else None,
        set_recall=found / len(relevant) if relevant else 1.0)


@dataclass(frozen=True)
class Summary:
    topics: int
    ndcg10: float  # means over the topics with relevant papers
    p10: float
    r20: float
    precision20: float  # mean over the topics that return something (off-topic ones included)
    set_precision: float
    set_recall: float
    empty: int  # topics with relevant papers that return nothing
    off_topic_returning: int  # topics without relevant papers that return something
    short: list[str]  # topics with MANY+ relevant papers showing fewer than MIN_SHOWN


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def summarize(per_topic: dict[str, Scores]) -> Summary:
    judged = {t: s for t, s in per_topic.items() if s.relevant}
    returning = [s for s in per_topic.values() if s.returned]
    return Summary(
        topics=len(per_topic),
        ndcg10=mean([s.ndcg10 for s in judged.values()]),
        p10=mean([s.p10 for s in judged.values()]),
        r20=mean([s.r20 for s in judged.values()]),
        precision20=mean([s.precision20 or 0.0 for s in returning]),
        set_precision=mean([s.set_precision or 0.0 for s in returning]),
        set_recall=mean([s.set_recall for s in judged.values()]),
        empty=sum(1 for s in judged.values() if not s.returned),
        off_topic_returning=sum(1 for s in per_topic.values() if not s.relevant and s.returned),
        short=[t for t, s in judged.items() if s.relevant >= MANY and s.shown < MIN_SHOWN])
