"""The delivery ledger: who got which edition, and which papers each person has been sent.

One row per (subscriber, edition) under a unique key, so a second digest for the same edition
cannot exist; one row per (subscriber, paper), so no paper reaches the same person twice.
A row is written right after each SMTP reply: a crash loses at most the message in flight,
which stays ``sending`` and is reported rather than resent blindly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Collection, Iterable

from sqlalchemy import Engine, desc, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .store import as_utc, deliveries, sent_papers, subscribers, utcnow

FINAL = ("sent", "skipped", "failed")  # never retried automatically
UNCERTAIN = "sending"  # left by a crash: the server may or may not have the message


def states_for(engine: Engine, editions: dict[int, str]) -> dict[int, str]:
    """The ledger state of each subscriber's due edition (absent: not started)."""
    if not editions:
        return {}
    query = (select(deliveries.c.subscriber_id, deliveries.c.edition, deliveries.c.state)
             .where(deliveries.c.edition.in_(set(editions.values()))))
    with engine.connect() as conn:
        return {row.subscriber_id: row.state for row in conn.execute(query)
                if editions.get(row.subscriber_id) == row.edition}


def sent_papers_by_subscriber(engine: Engine, ids: Collection[int]) -> dict[int, set[str]]:
    """Paper ids already sent, per subscriber; read in chunks to keep IN lists small."""
    result: dict[int, set[str]] = defaultdict(set)
    ordered = sorted(ids)
    with engine.connect() as conn:
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            query = (select(sent_papers.c.subscriber_id, sent_papers.c.paper_id)
                     .where(sent_papers.c.subscriber_id.in_(chunk)))
            for row in conn.execute(query):
                result[row.subscriber_id].add(row.paper_id)
    return result


def begin(engine: Engine, subscriber_id: int, edition: str, paper_count: int) -> int | None:
    """Claim the (subscriber, edition) row as ``sending``; None if it is already final."""
    now = utcnow()
    key = (deliveries.c.subscriber_id == subscriber_id) & (deliveries.c.edition == edition)
    with engine.begin() as conn:
        try:
            with conn.begin_nested():
                return conn.execute(insert(deliveries).values(
                    subscriber_id=subscriber_id, edition=edition, state="sending", attempts=1,
                    paper_count=paper_count, created_at=now, updated_at=now,
                ).returning(deliveries.c.id)).scalar_one()
        except IntegrityError:
            pass  # a row exists: an earlier run left it pending after a temporary failure
        claimed = conn.execute(
            update(deliveries).where(key & (deliveries.c.state == "pending"))
            .values(state="sending", attempts=deliveries.c.attempts + 1,
                    paper_count=paper_count, updated_at=now)
            .returning(deliveries.c.id)).scalar_one_or_none()
        return claimed


def mark_sent(engine: Engine, delivery_id: int, subscriber_id: int, message_id: str,
              paper_ids: Iterable[str]) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(
            state="sent", message_id=message_id, last_error=None, updated_at=now))
        rows = [{"subscriber_id": subscriber_id, "paper_id": pid, "delivery_id": delivery_id,
                 "sent_at": now} for pid in dict.fromkeys(paper_ids)]
        if rows:
            conn.execute(insert(sent_papers), rows)


def mark_failed(engine: Engine, delivery_id: int, error: str, *, permanent: bool) -> None:
    """Permanent failures are final; temporary ones go back to ``pending`` for the next run."""
    with engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(
            state="failed" if permanent else "pending", last_error=error[:1000],
            updated_at=utcnow()))


def mark_skipped(engine: Engine, subscriber_id: int, edition: str) -> None:
    """Nothing relevant and new: recorded, so the edition counts as handled."""
    now = utcnow()
    try:
        with engine.begin() as conn:
            conn.execute(insert(deliveries).values(
                subscriber_id=subscriber_id, edition=edition, state="skipped", attempts=0,
                paper_count=0, created_at=now, updated_at=now))
    except IntegrityError:
        pass  # another run handled this edition first


@dataclass(frozen=True)
class EditionCount:
    edition: str
    state: str
    count: int


@dataclass(frozen=True)
class LedgerEntry:
    email: str
    edition: str
    state: str
    attempts: int
    error: str | None
    updated_at: datetime | None


def counts(engine: Engine, limit_editions: int = 10) -> list[EditionCount]:
    query = (select(deliveries.c.edition, deliveries.c.state, func.count())
             .group_by(deliveries.c.edition, deliveries.c.state)
             .order_by(desc(deliveries.c.edition), deliveries.c.state))
    with engine.connect() as conn:
        rows = [EditionCount(*row) for row in conn.execute(query)]
    editions = list(dict.fromkeys(row.edition for row in rows))[:limit_editions]
    return [row for row in rows if row.edition in editions]


def problems(engine: Engine, limit: int = 20) -> list[LedgerEntry]:
    """Failures, pending retries and uncertain messages, most recent first."""
    query = (select(subscribers.c.email, deliveries.c.edition, deliveries.c.state,
                    deliveries.c.attempts, deliveries.c.last_error, deliveries.c.updated_at)
             .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
             .where(deliveries.c.state.in_(["failed", "pending", UNCERTAIN]))
             .order_by(desc(deliveries.c.updated_at)).limit(limit))
    with engine.connect() as conn:
        return [LedgerEntry(r.email, r.edition, r.state, r.attempts, r.last_error,
                            as_utc(r.updated_at)) for r in conn.execute(query)]
