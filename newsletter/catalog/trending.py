"""What is trending: the one place the trending score is defined.

A paper's trending score is its engagement divided by a power of its age, as in Hacker News'
ranking (points / (age_hours + 2) ** 1.8)::

    engagement = upvotes + COMMENT_WEIGHT * comments + CLICK_WEIGHT * clicks
    trending   = engagement / (age_hours + AGE_OFFSET_HOURS) ** GRAVITY

- Missing counts are 0; a paper with no count at all has no score (None), which is different
  from a score of 0: with no engagement data anywhere, digests say nothing about trending.
- A comment weighs two upvotes (it costs more effort); a click on our own digest link half of
  one (it is cheap, and counted only when click tracking is on).
- ``age_hours`` runs from when the paper started to trend: its first appearance on a list
  (``listed_at``, even when the list gave no year and ours is a guess), else its publication
  date (midnight UTC), else when our catalog first saw it. A paper with none of these has no
  score: what cannot be dated cannot decay. The same start dates freshness (``select.py``).
  A listing or publication date more than MAX_SKEW after our first sighting is wrong (a source
  saying 9999-01-01 would keep its paper the hottest for ever) and is passed over.
- GRAVITY 1.8 lets age dominate quickly, so the list keeps moving: 100 upvotes at 48 hours
  (100 / 50^1.8 = 0.087) rank below 30 upvotes at 6 hours (30 / 8^1.8 = 0.710), which rank
  below 10 upvotes at 1 hour (10 / 3^1.8 = 1.384).
- A paper trends only with at least MIN_ENGAGEMENT points (one upvote on a paper an hour old
  scores high, but is not a trend) and a score of at least TRENDING_FLOOR, the score of
  MIN_ENGAGEMENT points FLOOR_AGE_DAYS days old (an old paper needs many more).

In a digest, the Trending section holds only papers relevant to one of the subscriber's topics
(the ranker matched them: a trending paper far from every topic never appears), ordered by::

    pick = trending * relevance

where ``relevance`` is the ranker's score for the paper's best topic (0..~1.8).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from newsletter.models import Paper

COMMENT_WEIGHT = 2.0
CLICK_WEIGHT = 0.5
GRAVITY = 1.8
AGE_OFFSET_HOURS = 2.0  # a brand-new paper is not infinitely hot
MIN_ENGAGEMENT = 5.0
FLOOR_AGE_DAYS = 7.0
TRENDING_FLOOR = MIN_ENGAGEMENT / (FLOOR_AGE_DAYS * 24 + AGE_OFFSET_HOURS) ** GRAVITY
MAX_SKEW = timedelta(days=1)  # a source's time zone or clock ahead of ours, not a wrong date


def engagement(paper: Paper) -> float | None:
    """The weighted engagement count, or None when the paper has no engagement data."""
    counts = (paper.upvotes, paper.comments, paper.clicks)
    if all(count is None for count in counts):
        return None
    upvotes, comments, clicks = (count or 0 for count in counts)
    return upvotes + COMMENT_WEIGHT * comments + CLICK_WEIGHT * clicks


def trend_start(paper: Paper) -> datetime | None:
    """When the paper started to trend: listed, else published, else first seen."""
    listed, published = stated_dates(paper)
    start = listed or published or paper.first_seen_at
    return _utc(start) if start is not None else None


def stated_dates(paper: Paper) -> tuple[datetime | None, datetime | None]:
    """(listed, published at midnight UTC) as the sources stated them, each None when absent or
    when it cannot be true: more than MAX_SKEW after our catalog first saw the paper (a paper
    without a sighting is given the benefit)."""
    listed = _utc(paper.listed_at) if paper.listed_at is not None else None
    published = (datetime.combine(paper.published, time(0), tzinfo=UTC)
                 if paper.published is not None else None)
    if paper.first_seen_at is None:
        return listed, published
    latest = _utc(paper.first_seen_at) + MAX_SKEW
    return (listed if listed and listed <= latest else None,
            published if published and published <= latest else None)


def age_hours(paper: Paper, now: datetime) -> float | None:
    start = trend_start(paper)
    if start is None:
        return None
    return max((_utc(now) - start).total_seconds() / 3600, 0.0)  # a clock ahead of ours: 0


def trending_score(paper: Paper, now: datetime) -> float | None:
    """engagement / (age_hours + AGE_OFFSET_HOURS) ** GRAVITY; None without data or a date."""
    points, age = engagement(paper), age_hours(paper, now)
    if points is None or age is None:
        return None
    return points / (age + AGE_OFFSET_HOURS) ** GRAVITY


def is_trending(paper: Paper, score: float | None) -> bool:
    """Whether ``paper``, with its ``trending_score``, counts as trending at all."""
    points = engagement(paper)
    return (score is not None and score >= TRENDING_FLOOR and points is not None
            and points >= MIN_ENGAGEMENT)


def pick_score(trending: float, relevance: float) -> float:
    """Order within a digest's Trending section: trending blended with topic relevance."""
    return trending * relevance


def describe(paper: Paper) -> str:
    """The engagement a person can check: "120 upvotes, 4 comments"."""
    parts = [(paper.upvotes, "upvote"), (paper.comments, "comment"), (paper.clicks, "click")]
    said = [f"{n:,} {word}{'s' if n != 1 else ''}" for n, word in parts if n]
    return ", ".join(said) or "no engagement yet"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
