"""Subscriber queries: the mirror of the subscribers/ files, and what people change
themselves through ``newsletter serve`` (sign-up, preferences, unsubscribe)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Collection, Iterable, Iterator, Sequence

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.models import Subscriber
from newsletter.store.schema import as_utc, signups, subscribers, utcnow

SIGNUP_KEPT_FOR = timedelta(days=30)


def _subscriber_row(sub: Subscriber) -> dict[str, Any]:
    return {
        "email": sub.email, "name": sub.name, "topics": list(sub.topics),
        "exclude": list(sub.exclude), "max_papers": sub.max_papers, "frequency": sub.frequency,
        "weekday": sub.weekday, "send_time": sub.send_time.strftime("%H:%M"),
        "timezone": sub.timezone, "origin": sub.origin,
    }


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id, email=row.email, name=row.name, topics=tuple(row.topics),
        exclude=tuple(row.exclude), max_papers=row.max_papers, frequency=row.frequency,
        weekday=row.weekday, send_time=time.fromisoformat(row.send_time),
        timezone=row.timezone, status=row.status, origin=row.origin,
    )


def load_subscribers(engine: Engine, statuses: Iterable[str] | None = ("active",),
                     email: str | None = None,
                     ids: Collection[int] | None = None) -> list[Subscriber]:
    query = select(subscribers).order_by(subscribers.c.id)
    if statuses is not None:
        query = query.where(subscribers.c.status.in_(list(statuses)))
    if email is not None:
        query = query.where(subscribers.c.email == email.lower())
    if ids is not None:
        query = query.where(subscribers.c.id.in_(list(ids)))
    with engine.connect() as conn:
        return [_subscriber(row) for row in conn.execute(query)]


def count_subscribers(engine: Engine, status: str = "active") -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(subscribers)
                           .where(subscribers.c.status == status)) or 0


def iter_subscribers(engine: Engine, chunk: int = 5000) -> Iterator[list[Subscriber]]:
    """Active subscribers in id order, ``chunk`` at a time: memory stays flat at any count."""
    after = 0
    while True:
        query = (select(subscribers).where((subscribers.c.status == "active")
                                           & (subscribers.c.id > after))
                 .order_by(subscribers.c.id).limit(chunk))
        with engine.connect() as conn:
            found = [_subscriber(row) for row in conn.execute(query)]
        if not found:
            return
        yield found
        after = found[-1].id  # type: ignore[assignment]


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    kept_unsubscribed: int = 0


def sync_subscribers(engine: Engine, listed: Sequence[Subscriber]) -> SyncReport:
    """Mirror the subscribers/ files into the database (see ``_sync``); when another process
    inserted the same new addresses meanwhile, the second pass finds them and updates."""
    try:
        return _sync(engine, listed)
    except IntegrityError:
        return _sync(engine, listed)


def _sync(engine: Engine, listed: Sequence[Subscriber]) -> SyncReport:
    """Mirror the subscribers/ files into the database.

    What people did themselves wins over the files: an unsubscribed or bounced address stays
    so, and self-managed preferences are not overwritten. Addresses that came from the files
    and are no longer listed become ``removed`` (kept, so the ledger keeps its history).
    """
    report = SyncReport()
    now = utcnow()
    by_email = {sub.email: sub for sub in listed}
    with engine.begin() as conn:
        existing = {row.email: row for row in conn.execute(select(subscribers))}
        for email, sub in by_email.items():
            row = existing.get(email)
            if row is None:
                conn.execute(insert(subscribers).values(
                    **_subscriber_row(sub), status="active", self_managed=False,
                    created_at=now, updated_at=now))
                report.added += 1
                continue
            values = {} if row.self_managed else _subscriber_row(sub)
            if row.status in ("unsubscribed", "bounced"):
                report.kept_unsubscribed += 1
            elif row.status == "removed":
                values["status"] = "active"
            changed = {k: v for k, v in values.items() if getattr(row, k) != v}
            if changed:
                conn.execute(update(subscribers).where(subscribers.c.id == row.id)
                             .values(**changed, updated_at=now))
                report.updated += 1
            else:
                report.unchanged += 1
        gone = [row.id for email, row in existing.items()
                if email not in by_email and row.origin != "web" and row.status == "active"]
        if gone:
            conn.execute(update(subscribers).where(subscribers.c.id.in_(gone))
                         .values(status="removed", updated_at=now))
            report.removed = len(gone)
    return report


def set_subscriber_status(engine: Engine, email: str, status: str) -> bool:
    with engine.begin() as conn:
        result = conn.execute(update(subscribers).where(subscribers.c.email == email.lower())
                              .values(status=status, updated_at=utcnow()))
        return result.rowcount > 0


def subscriber_status(engine: Engine, email: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(select(subscribers.c.status)
                           .where(subscribers.c.email == email.lower()))


def requested_topics(engine: Engine, email: str) -> list[str] | None:
    """The topics of the sign-up waiting for this address; None when none waits (used up)."""
    with engine.connect() as conn:
        topics = conn.scalar(select(signups.c.topics).where(signups.c.email == email.lower()))
    return None if topics is None else list(topics)


def request_signup(engine: Engine, email: str, topics: Sequence[str], *,
                   resend_after: timedelta, now: datetime | None = None) -> tuple[str | None, bool]:
    """Remember a sign-up request (the latest topics win) until it is confirmed.

    Returns the address's current status (None: not a subscriber) and whether an email may
    go out now: at most one per ``resend_after``, so the form cannot flood a stranger's inbox.
    """
    now, email = now or utcnow(), email.lower()
    with engine.begin() as conn:
        conn.execute(signups.delete().where(signups.c.requested_at < now - SIGNUP_KEPT_FOR))
        emailed = conn.execute(select(signups.c.emailed_at)
                               .where(signups.c.email == email)).first()
        send = emailed is None or emailed[0] is None or as_utc(emailed[0]) <= now - resend_after
        values = {"topics": list(topics), "requested_at": now}
        if send:
            values["emailed_at"] = now
        if emailed is None:
            conn.execute(insert(signups).values(email=email, **values))
        else:
            conn.execute(update(signups).where(signups.c.email == email).values(**values))
        status = conn.scalar(select(subscribers.c.status).where(subscribers.c.email == email))
    return status, send


def confirm_signup(engine: Engine, email: str, now: datetime | None = None) -> Subscriber | None:
    """Make the address active with the topics it asked for; None when no request waits.

    A returning address keeps its other preferences; it becomes ``origin="web"`` and
    self-managed, so neither the removal of a file entry nor the entry itself undoes this.
    """
    now, email = now or utcnow(), email.lower()
    with engine.begin() as conn:
        request = conn.execute(select(signups).where(signups.c.email == email)).first()
        if request is None:
            return None
        values = {"topics": list(request.topics), "status": "active", "origin": "web",
                  "self_managed": True, "updated_at": now}
        found = conn.execute(update(subscribers).where(subscribers.c.email == email)
                             .values(**values))
        if found.rowcount == 0:
            fresh = _subscriber_row(Subscriber(email=email, name="", topics=()))
            conn.execute(insert(subscribers).values({**fresh, **values, "created_at": now}))
        conn.execute(signups.delete().where(signups.c.email == email))
    return load_subscribers(engine, statuses=None, email=email)[0]


def unsubscribe(engine: Engine, email: str) -> bool:
    """Stop every digest to ``email`` now and for good (until they subscribe again
    themselves); False when the address is not on the list. Idempotent."""
    with engine.begin() as conn:
        conn.execute(update(subscribers)
                     .where(subscribers.c.email == email.lower(),
                            subscribers.c.status != "unsubscribed")
                     .values(status="unsubscribed", updated_at=utcnow()))
        return conn.scalar(select(func.count()).select_from(subscribers)
                           .where(subscribers.c.email == email.lower())) == 1


def update_preferences(engine: Engine, subscriber: Subscriber) -> bool:
    """Store what the person chose on the preferences page (matched by email, status left as
    it is) and mark it self-managed, so the subscribers/ files no longer overwrite it."""
    row = _subscriber_row(subscriber)
    del row["email"], row["origin"]
    with engine.begin() as conn:
        result = conn.execute(update(subscribers)
                              .where(subscribers.c.email == subscriber.email.lower())
                              .values(**row, self_managed=True, updated_at=utcnow()))
        return result.rowcount > 0

