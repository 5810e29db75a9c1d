from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from newsletter.dispatch.due import due_edition, latest_slot
from newsletter.models import Subscriber

TOKYO = Subscriber(email="t@example.org", name="", topics=("OT",), timezone="Asia/Tokyo",
                   send_time=time(7, 0))
NEW_YORK_WEEKLY = Subscriber(email="n@example.org", name="", topics=("NAS",),
                             timezone="America/New_York", send_time=time(8, 30),
                             frequency="weekly", weekday=0)
STALE = timedelta(hours=12)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("now, edition", [
    (utc(2026, 11, 22, 21, 59), None),  # 06:59 Tokyo on the 23rd: yesterday's slot is 24 h old
    (utc(2026, 11, 22, 22, 0), "2026-11-23"),  # 07:00 Tokyo
    (utc(2026, 11, 23, 9, 59), "2026-11-23"),  # 18:59 Tokyo: still within 12 hours
    (utc(2026, 11, 23, 10, 1), None),  # past the stale cutoff
])
def test_a_daily_digest_is_due_from_the_local_send_time_until_it_goes_stale(
        now: datetime, edition: str | None) -> None:
    assert due_edition(TOKYO, now, STALE) == edition


def test_a_weekly_digest_is_due_on_its_weekday_at_local_time() -> None:
    monday_0830_ny = utc(2026, 11, 23, 13, 30)  # EST is UTC-5
    assert due_edition(NEW_YORK_WEEKLY, monday_0830_ny - timedelta(minutes=1), STALE) is None
    assert due_edition(NEW_YORK_WEEKLY, monday_0830_ny, STALE) == "2026-W48"
    assert due_edition(NEW_YORK_WEEKLY, utc(2026, 11, 25, 12), STALE) is None  # Wednesday
    assert due_edition(NEW_YORK_WEEKLY, utc(2026, 11, 25, 12), timedelta(days=7)) == "2026-W48"


def test_after_downtime_only_the_latest_slot_counts() -> None:
    three_days_later = utc(2026, 11, 25, 23, 0)  # 08:00 Tokyo on the 26th
    assert latest_slot(TOKYO, three_days_later) == datetime(
        2026, 11, 26, 7, 0, tzinfo=latest_slot(TOKYO, three_days_later).tzinfo)
    assert due_edition(TOKYO, three_days_later, STALE) == "2026-11-26"


def test_the_local_send_time_follows_daylight_saving() -> None:
    paris = Subscriber(email="p@example.org", name="", topics=("OT",), timezone="Europe/Paris",
                       send_time=time(7, 0))
    assert due_edition(paris, utc(2026, 7, 1, 5, 0), STALE) == "2026-07-01"  # CEST, UTC+2
    assert due_edition(paris, utc(2026, 12, 1, 5, 59), STALE) is None  # CET: 06:59 local
    assert due_edition(paris, utc(2026, 12, 1, 6, 0), STALE) == "2026-12-01"
