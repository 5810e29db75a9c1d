"""Choose what one subscriber gets in one edition. Pure: no I/O, no clock but ``now``; the
result depends on the arguments alone (the memo below only shares work between calls).

Relevance comes from the shared :class:`~newsletter.relevance.rank.Ranker` (memoized per topic, so
ten thousand subscribers with overlapping topics cost a few dozen rankings). Freshness only
nudges: a paper's score is multiplied by at most ``1 + FRESHNESS_BOOST``, halving every
``FRESHNESS_HALF_LIFE_DAYS``, so a clearly more relevant older paper still wins, while between
two similar matches the newer one goes first.

Trending (scores in ``trending.py``): when papers relevant to the subscriber's topics are trending,
the digest opens with a Trending section of up to ``TRENDING_SLOTS`` of them, ordered by trending
blended with relevance; the topic sections follow with the rest of ``max_papers``. Without
engagement data there is no such section, and the digest is relevance and freshness only.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, timezone
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from newsletter.catalog.trending import (
    describe,
    is_trending,
    pick_score,
    trend_start,
    trending_score,
)
from newsletter.models import Digest, DigestItem, Paper, ReaderSignals, Section, Subscriber
from newsletter.relevance.feedback import DEFAULT_KNOBS, SAVED_TOPIC, Knobs, ReaderModel
from newsletter.relevance.rank import Match, Ranker
from newsletter.relevance.vectors import vectors_for

FRESHNESS_BOOST = 0.1  # a paper from today scores up to 10% higher than an old one
FRESHNESS_HALF_LIFE_DAYS = 7.0
TRENDING_TOPIC = "Trending"
TRENDING_SLOTS = 3  # and at most a third of max_papers (at least one)


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
                 edition: str, now: datetime, reader: ReaderSignals | None = None,
                 knobs: Knobs = DEFAULT_KNOBS) -> Digest | None:
    """The subscriber's digest for ``edition``, or None when nothing relevant is new to them.

    Candidates: papers relevant to a topic, minus those already ``sent`` to this subscriber
    and those relevant to any of their excluded topics. Each paper appears once: in the
    Trending section when it is one of the top trending candidates, else under the topic that
    picked it, the topics taking turns (``_fair``); ``max_papers`` in all, topic sections in
    the subscriber's order.

    ``reader``: what the subscriber told us (``feedback.py``). Hidden papers and their
    near-duplicates are left out, each topic's candidates are re-ordered by the reader's taste,
    and a "Like papers you saved" section closes the digest when papers close to a liked or own
    one are left. None or empty signals: exactly the digest the topics alone make.
    """
    limit = subscriber.max_papers
    topics = tuple(dict.fromkeys(subscriber.topics))  # a repeated topic would repeat its section
    if limit <= 0 or not topics:
        return None
    excluded = [ranker.matching_ids(topic) for topic in subscriber.exclude]
    sent = sent if isinstance(sent, (set, frozenset)) else set(sent)

    model = None if reader is None or reader.empty else ReaderModel(
        vectors_for(ranker), reader, knobs)

    def skip(pid: str) -> bool:
        return (pid in sent or any(pid in ids for ids in excluded)
                or (model is not None and model.is_hidden(pid)))

    slots = min(TRENDING_SLOTS, max(1, limit // 3))
    trending = _best(ranker, topics, "trending", now, skip, slots)
    chosen = {item.paper.id for item in trending}
    rest = _fair(ranker, topics, now, lambda pid: pid in chosen or skip(pid),
                 limit - len(trending), taken=trending, model=model)
    free = limit - len(trending) - len(rest)
    saved = _saved(ranker, model, free, skip, [*trending, *rest]) if model else []
    sections = _sections(topics, rest)
    if trending:
        sections = (Section(TRENDING_TOPIC, trending, trending=True), *sections)
    if saved:
        sections = (*sections, Section(SAVED_TOPIC, tuple(saved)))
    if not sections:
        return None
    return Digest(subscriber=subscriber, edition=edition, sections=sections, created_at=now)


def _best(ranker: Ranker, topics: Sequence[str], kind: str, now: datetime,
          skip: Callable[[str], bool], limit: int) -> list[DigestItem]:
    """The best ``limit`` items of the ``kind`` lists of ``topics``, each paper once and no
    two near-duplicates, in order."""
    best: dict[str, DigestItem] = {}
    for topic in topics:
        # Lists are in blended order, so past the first `limit` eligible papers of every list
        # nothing can make the cut: the cost is `limit` per topic, not the list's length.
        taken: list[DigestItem] = []
        for item in _ranked(ranker, topic, kind, now):
            if len(taken) >= limit:
                break
            pid = item.paper.id
            if skip(pid) or _near_duplicate(ranker, item, taken):
                continue
            taken.append(item)
            held = best.get(pid)
            # Strictly better only: on a tie the paper stays under the subscriber's earlier topic.
            if held is None or item.score > held.score:
                best[pid] = item
    kept: list[DigestItem] = []
    for item in sorted(best.values(), key=_item_order):  # two topics may hold two versions
        if len(kept) >= limit:
            break
        if not _near_duplicate(ranker, item, kept):
            kept.append(item)
    return kept


def _fair(ranker: Ranker, topics: Sequence[str], now: datetime, skip: Callable[[str], bool],
          limit: int, taken: Sequence[DigestItem] = (),
          model: ReaderModel | None = None) -> list[DigestItem]:
    """Up to ``limit`` items, the topics taking turns in the subscriber's order, each its own
    next best eligible paper: a topic whose papers score lower (GNN papers abound, PINN papers
    are fewer and rarer-worded) still gets its share instead of being crowded out."""
    if model is None:
        queues = {topic: iter(_ranked(ranker, topic, "relevant", now)) for topic in topics}
    else:
        queues = {topic: _to_taste(_ranked(ranker, topic, "relevant", now), model, skip)
                  for topic in topics}
    chosen: dict[str, DigestItem] = {}
    while queues and len(chosen) < limit:
        for topic in list(queues):
            if len(chosen) >= limit:
                break
            item = next((i for i in queues[topic]
                         if i.paper.id not in chosen and not skip(i.paper.id)
                         and not _near_duplicate(ranker, i, [*taken, *chosen.values()])), None)
            if item is None:
                del queues[topic]
            else:
                chosen[item.paper.id] = item
    # The set is fair; each paper is still shown under the topic it matches best.
    return sorted((_best_filing(ranker, topics, now, item, model) for item in chosen.values()),
                  key=_item_order)


def _to_taste(items: Sequence[DigestItem], model: ReaderModel,
              skip: Callable[[str], bool]) -> Iterator[DigestItem]:
    """A topic's items in the reader's order: the first ``depth`` eligible ones re-scored by
    the reader's taste and re-sorted, then the others (re-scored as they are reached). Only the
    head is re-ordered, so a digest costs ``depth`` per topic however long the list."""
    rest = iter(items)
    head: list[DigestItem] = []
    for item in rest:
        if not skip(item.paper.id):
            head.append(_tasted(item, model))
            if len(head) >= model.knobs.depth:
                break
    yield from sorted(head, key=_item_order)
    for item in rest:
        yield _tasted(item, model)


def _tasted(item: DigestItem, model: ReaderModel) -> DigestItem:
    return replace(item, score=item.score * model.factor(item.paper))


def _saved(ranker: Ranker, model: ReaderModel, free: int, skip: Callable[[str], bool],
           taken: Sequence[DigestItem]) -> list[DigestItem]:
    """The "Like papers you saved" items: papers close to a liked or own one that the topics
    did not already bring, no two near-duplicates, each saying which paper it is like. Only
    the ``free`` places: taking places from the topics cost a dev topic 0.04 nDCG@10."""
    slots = min(model.knobs.saved_slots, free)
    held = {item.paper.id for item in taken}
    kept: list[DigestItem] = []
    for found in model.saved(slots, lambda pid: pid in held or skip(pid)):
        if len(kept) >= slots:
            break
        item = DigestItem(paper=found.paper, score=found.closeness, topic=SAVED_TOPIC,
                          reason=f"like: {found.like}")
        if not _near_duplicate(ranker, item, [*taken, *kept]):
            kept.append(item)
    return kept


def _near_duplicate(ranker: Ranker, item: DigestItem, kept: Sequence[DigestItem]) -> bool:
    """Five versions of one paper (a v1 and its follow-up, Part I and Part II) would crowd a
    section; the ranker judges closeness by embeddings when it has them, else by words, and
    knows each paper's near-duplicates once per run."""
    return ranker.near_duplicate_of_any(item.paper, (other.paper for other in kept))


def _best_filing(ranker: Ranker, topics: Sequence[str], now: datetime,
                 item: DigestItem, model: ReaderModel | None = None) -> DigestItem:
    for topic in topics:  # strictly better only: a tie stays under the earlier topic
        other = _indexed(ranker, topic, now).get(item.paper.id)
        if other is not None and model is not None:
            other = _tasted(other, model)  # the same factor as the item's: the paper's own
        if other is not None and other.score > item.score:
            item = other
    return item


def _indexed(ranker: Ranker, topic: str, now: datetime) -> dict[str, DigestItem]:
    memo = _BY_ID.setdefault(ranker, {})
    key = (topic, now)
    if key not in memo:
        if memo and next(iter(memo))[1] != now:
            memo.clear()
        memo[key] = {item.paper.id: item for item in _ranked(ranker, topic, "relevant", now)}
    return memo[key]


# Per ranker, per run time: each topic's items of each kind ("relevant": matches with freshness
# blended in; "trending": trending matches blended with relevance), in digest order. Shared by
# every subscriber of the run, like the ranker's own memo; weak, so it goes with the ranker.
_BLENDED: WeakKeyDictionary[Ranker, dict[tuple[str, str, datetime], tuple[DigestItem, ...]]] = (
    WeakKeyDictionary())
_BY_ID: WeakKeyDictionary[Ranker, dict[tuple[str, datetime], dict[str, DigestItem]]] = (
    WeakKeyDictionary())


def _ranked(ranker: Ranker, topic: str, kind: str, now: datetime) -> tuple[DigestItem, ...]:
    memo = _BLENDED.setdefault(ranker, {})
    key = (topic, kind, now)
    items = memo.get(key)
    if items is None:
        if memo and next(iter(memo))[2] != now:  # another run time: the old blends are stale
            memo.clear()
        matches = ranker.rank(topic)
        if kind == "trending":
            blended = filter(None, (_trending_item(match, now) for match in matches))
        else:
            blended = (_item(match, _as_utc(now).date()) for match in matches)
        items = memo[key] = tuple(sorted(blended, key=_item_order))
    return items


def _trending_item(match: Match, now: datetime) -> DigestItem | None:
    """The match as a Trending item, or None when the paper is not trending."""
    trend = trending_score(match.paper, now)
    if trend is None or not is_trending(match.paper, trend):
        return None
    return DigestItem(paper=match.paper, score=pick_score(trend, match.score), topic=match.topic,
                      reason=f"trending: {describe(match.paper)}; {match.reason}")


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
    # When the paper became news: listed, else published, else first seen (as for trending).
    start = trend_start(paper)
    return start.date() if start is not None else None


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
