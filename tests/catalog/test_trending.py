from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from newsletter.catalog.trending import (
    AGE_OFFSET_HOURS,
    GRAVITY,
    MIN_ENGAGEMENT,
    TRENDING_FLOOR,
    age_hours,
    describe,
    engagement,
    is_trending,
    pick_score,
    trending_score,
)
from newsletter.models import Paper

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def listed(hours_ago: float, upvotes: int | None = None, comments: int | None = None,
           clicks: int | None = None) -> Paper:
    return Paper(id="p", title="P", abstract="", upvotes=upvotes, comments=comments,
                 clicks=clicks, listed_at=NOW - timedelta(hours=hours_ago))


def test_the_constants_are_hacker_news_gravity() -> None:
    assert (GRAVITY, AGE_OFFSET_HOURS) == (1.8, 2.0)


def test_the_score_is_weighted_engagement_over_age_plus_two_hours_to_the_1_8() -> None:
    paper = listed(22, upvotes=10, comments=2, clicks=4)
    assert engagement(paper) == 10 + 2 * 2 + 0.5 * 4
    assert trending_score(paper, NOW) == pytest.approx(16 / 24 ** 1.8)
    assert trending_score(paper, NOW) == pytest.approx(0.05245, abs=1e-5)


def test_gravity_ranks_a_fresh_small_paper_above_an_old_big_one() -> None:
    # The worked example in trending.py's docstring, by hand: n / (hours + 2) ** 1.8.
    old_big, middle, fresh_small = listed(48, 100), listed(6, 30), listed(1, 10)
    scores = [trending_score(p, NOW) for p in (old_big, middle, fresh_small)]
    assert scores == pytest.approx([0.08747, 0.71049, 1.38415], abs=1e-5)
    assert scores[2] > scores[1] > scores[0]


def test_no_engagement_data_is_no_score_while_zero_engagement_is_a_zero_score() -> None:
    assert trending_score(listed(5), NOW) is None
    assert trending_score(listed(5, upvotes=0), NOW) == 0.0
    assert trending_score(Paper(id="p", title="P", abstract="", upvotes=9), NOW) is None  # undated


def test_age_counts_from_the_listing_else_publication_else_first_sighting() -> None:
    paper = Paper(id="p", title="P", abstract="", upvotes=1, published=date(2026, 11, 21),
                  first_seen_at=NOW - timedelta(hours=3))
    assert age_hours(paper, NOW) == 55  # from midnight UTC on the publication day
    assert age_hours(Paper(id="p", title="P", abstract="", first_seen_at=paper.first_seen_at),
                     NOW) == 3
    assert age_hours(Paper(id="p", title="P", abstract="", published=date(2026, 11, 21),
                           listed_at=NOW - timedelta(hours=5)), NOW) == 5
    assert age_hours(listed(-4), NOW) == 0  # listed "in the future" by a clock ahead of ours


def test_a_date_days_after_our_first_sighting_is_not_believed() -> None:
    # A source saying 9999-01-01 (or next month) would keep its paper the freshest and
    # hottest of the catalog for ever; a day of skew (time zones, a clock ahead) is believed.
    seen = NOW - timedelta(hours=30)
    far = Paper(id="p", title="P", abstract="", upvotes=50, first_seen_at=seen,
                listed_at=datetime(9999, 1, 1, tzinfo=UTC), published=date(9999, 1, 1))
    assert age_hours(far, NOW) == 30
    wrong_listing = Paper(id="p", title="P", abstract="", first_seen_at=seen,
                          listed_at=NOW + timedelta(days=40), published=date(2026, 11, 21))
    assert age_hours(wrong_listing, NOW) == 55  # the publication date is still good
    skewed = Paper(id="p", title="P", abstract="", first_seen_at=seen,
                   listed_at=seen + timedelta(hours=20))
    assert age_hours(skewed, NOW) == 10


def test_a_trend_needs_some_engagement_and_must_not_be_too_old() -> None:
    def trends(paper: Paper) -> bool:
        return is_trending(paper, trending_score(paper, NOW))

    assert not trends(listed(1, upvotes=1))  # scores 0.14, but one upvote is not a trend
    assert trends(listed(1, upvotes=int(MIN_ENGAGEMENT)))
    assert trends(listed(6 * 24, upvotes=5)) and not trends(listed(8 * 24, upvotes=5))
    assert trends(listed(30 * 24, upvotes=300))
    assert TRENDING_FLOOR == pytest.approx(5 / 170 ** 1.8)
    assert not trends(listed(5))


def test_the_digest_pick_blends_trending_with_relevance() -> None:
    assert pick_score(0.5, 1.2) == pytest.approx(0.6)


def test_describe_says_only_the_counts_there_are() -> None:
    assert describe(listed(1, upvotes=1200, comments=1)) == "1,200 upvotes, 1 comment"
    assert describe(listed(1, clicks=3, upvotes=0)) == "3 clicks"
