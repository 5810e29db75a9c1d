"""When a digest is due: each subscriber's frequency, local send time and timezone. Pure.

The scheduler looks only at the latest slot that has passed, so after downtime a subscriber
gets that one edition (no burst of the missed ones), and not at all once it is older than the
stale cutoff: yesterday's news at dinner time helps nobody.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from newsletter.models import Subscriber
from newsletter.relevance.select import edition_for


def latest_slot(subscriber: Subscriber, now: datetime) -> datetime:
    """The most recent scheduled send time at or before ``now``, in the subscriber's zone."""
    zone = ZoneInfo(subscriber.timezone)
    local = now.astimezone(zone)
    back = (local.weekday() - subscriber.weekday) % 7 if subscriber.frequency == "weekly" else 0
    step = 7 if subscriber.frequency == "weekly" else 1
    day = local.date() - timedelta(days=back)
    slot = datetime.combine(day, subscriber.send_time, tzinfo=zone)
    if slot > local:
        slot = datetime.combine(day - timedelta(days=step), subscriber.send_time, tzinfo=zone)
    return slot


def due_slot(subscriber: Subscriber, now: datetime,
             stale_after: timedelta) -> datetime | None:
    """The latest slot, or None when it is older than ``stale_after``."""
    slot = latest_slot(subscriber, now)
    return None if now - slot > stale_after else slot


def due_edition(subscriber: Subscriber, now: datetime, stale_after: timedelta) -> str | None:
    """The edition to send now, or None when the latest slot is older than ``stale_after``."""
    slot = due_slot(subscriber, now, stale_after)
    return None if slot is None else edition_for(subscriber, slot)
