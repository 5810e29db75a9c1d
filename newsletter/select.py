"""Choose what one subscriber gets in one edition. Pure: no I/O, no clock but ``now``; the
result depends on the arguments alone (the memo below only shares work between calls).

Relevance comes from the shared :class:`~newsletter.rank.Ranker` (memoized per topic, so
ten thousand subscribers with overlapping topics cost a few dozen rankings). Freshness only
nudges: a paper's score is multiplied by at most ``1 + FRESHNESS_BOOST``, halving every
``FRESHNESS_HALF_LIFE_DAYS``, so a clearly more relevant older paper still wins, while between
two similar matches the newer one goes first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime, timezone
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from .models import Digest, DigestItem, Paper, Section, Subscriber
from .rank import Match, Ranker

FRESHNESS_BOOST = 0.1  # a paper from today scores up to 10% higher than an old one
FRESHNESS_HALF_LIFE_DAYS = 7.0


def edition_for(subscriber: Subscriber, now: datetime) -> str:
    """The edition the subscriber is due at ``now``, on their own calendar.

    Daily: the local date ("2026-11-23"); weekly: the local ISO week ("2026-W48"). The
    ledger keys deliveries on it, so it must not depend on the server's time zone.
    """
    if now.tzinfo is None:  # a naive time is taken as UTC, as everywhere in the store
        now = now.replace(tzinfo=timezone.utc)
    local = now.astimezone(ZoneInfo(subscriber.timezone)).date()
    if subscriber.frequency == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.isoformat()


def build_digest(subscriber: Subscriber, ranker: Ranker, sent: Collection[str],
                 edition: str, now: datetime) -> Digest | None:
    """The subscriber's digest for ``edition``, or None when nothing relevant is new to them.

    Candidates: papers relevant to a topic, minus those already ``sent`` to this subscriber
    and those relevant to any of their excluded topics. Each paper appears once, under its
    best-scoring topic; the best ``max_papers`` overall are kept, grouped into one section per
    topic in the subscriber's order.
    """
    limit = subscriber.max_papers
    topics = tuple(dict.fromkeys(subscriber.topics))  # a repeated topic would repeat its section
    if limit <= 0 or not topics:
        return None
    today = _as_utc(now).date()
    excluded = [ranker.matching_ids(topic) for topic in subscriber.exclude]
    sent = sent if isinstance(sent, (set, frozenset)) else set(sent)
    best: dict[str, DigestItem] = {}
    for topic in topics:
        # Lists are in blended order, so past the first `limit` eligible papers of every list
        # nothing can make the cut: the cost is `limit` per topic, not the list's length.
        taken = 0
        for item in _ranked(ranker, topic, today):
            if taken >= limit:
                break
            pid = item.paper.id
            if pid in sent or any(pid in ids for ids in excluded):
                continue
            taken += 1
            held = best.get(pid)
            # Strictly better only: on a tie the paper stays under the subscriber's earlier topic.
            if held is None or item.score > held.score:
                best[pid] = item
    sections = _sections(topics, sorted(best.values(), key=_item_order)[:limit])
    if not sections:
        return None
    return Digest(subscriber=subscriber, edition=edition, sections=sections, created_at=now)


# Per ranker, per day: each topic's matches with freshness blended in, in digest order. Shared
# by every subscriber of the run, like the ranker's own memo; weak, so it goes with the ranker.
_BLENDED: WeakKeyDictionary[Ranker, dict[tuple[str, date], tuple[DigestItem, ...]]] = (
    WeakKeyDictionary())


def _ranked(ranker: Ranker, topic: str, today: date) -> tuple[DigestItem, ...]:
    memo = _BLENDED.setdefault(ranker, {})
    items = memo.get((topic, today))
    if items is None:
        if memo and next(iter(memo))[1] != today:  # a new day: yesterday's blend is stale
            memo.clear()
        blended = (_item(match, today) for match in ranker.rank(topic))
        items = memo[(topic, today)] = tuple(sorted(blended, key=_item_order))
    return items


def _item(match: Match, today: date) -> DigestItem:
    score = match.score * (1 + FRESHNESS_BOOST * _freshness(match.paper, today))
    return DigestItem(paper=match.paper, score=score, topic=match.topic, reason=match.reason)


def _freshness(paper: Paper, today: date) -> float:
    """1.0 for a paper from today, 0.5 a half-life ago, 0.0 without any date."""
    day = _paper_day(paper)
    if day is None:
        return 0.0
    age = max((today - day).days, 0)
    return 0.5 ** (age / FRESHNESS_HALF_LIFE_DAYS)


def _paper_day(paper: Paper) -> date | None:
    # The paper's own date when known; when the catalog first saw it otherwise.
    if paper.published is not None:
        return paper.published
    if paper.first_seen_at is not None:
        return _as_utc(paper.first_seen_at).date()
    return None


def _item_order(item: DigestItem) -> tuple[float, int, float, str]:
    paper = item.paper
    published = paper.published.toordinal() if paper.published else 0
    seen = _as_utc(paper.first_seen_at).timestamp() if paper.first_seen_at else 0.0
    return (-item.score, -published, -seen, paper.id)


def _sections(topics: Sequence[str], items: list[DigestItem]) -> tuple[Section, ...]:
    # `items` is already in score order, so each section keeps it.
    return tuple(
        Section(topic=topic, items=grouped)
        for topic in topics
        if (grouped := tuple(item for item in items if item.topic == topic))
    )


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
