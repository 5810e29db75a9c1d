"""The delivery ledger: who got which edition, and which papers each person has been sent.

One row per (subscriber, edition) under a unique key, so a second digest for the same edition
cannot exist; one row per (subscriber, paper), so no paper reaches the same person twice.
States::

    (none) -> pending (planned; claimed by a worker, see claims.py) -> sending -> sent
                      -> skipped (nothing relevant and new)      sending -> retrying -> sending ...
                                                                  sending -> failed (5xx, out of attempts)
                                                                  sending -> uncertain

``sending`` is written before a message goes and its outcome right after the server's reply
(``journal.py``): a crash loses at most the messages in flight, which become ``uncertain``:
reported for a person to decide, never resent blindly. This module holds the reads and the
named leases; the queue's writes are in ``claims.py`` and ``journal.py``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Collection

from sqlalchemy import Engine, delete, desc, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.dispatch.claims import lock_owner, owner_alive
from newsletter.store.schema import as_utc, deliveries, locks, sent_papers, subscribers, utcnow

__all__ = ["lock_owner", "acquire", "release", "states_for", "sent_papers_by_subscriber",
           "permanent_failures", "outcomes_since", "counts", "problems", "DONE", "HANDLED",
           "RETRYING"]

DONE = ("sent", "skipped", "failed", "uncertain")  # never picked up again automatically
HANDLED = (*DONE, "sending")  # not to be planned, composed or sent again
RETRYING = "retrying"


def states_for(engine: Engine, editions: dict[int, str]) -> dict[int, tuple[str, datetime | None]]:
    """(state, next_attempt_at) of each subscriber's given edition; absent: not started."""
    if not editions:
        return {}
    query = (select(deliveries.c.subscriber_id, deliveries.c.edition, deliveries.c.state,
                    deliveries.c.next_attempt_at)
             .where(deliveries.c.edition.in_(set(editions.values()))
                    & deliveries.c.subscriber_id.in_(list(editions))))
    with engine.connect() as conn:
        return {row.subscriber_id: (row.state, as_utc(row.next_attempt_at))
                for row in conn.execute(query)
                if editions.get(row.subscriber_id) == row.edition}


def sent_papers_by_subscriber(engine: Engine, ids: Collection[int],
                              since: datetime | None = None) -> dict[int, set[str]]:
    """Paper ids already sent, per subscriber; read in chunks to keep IN lists small.
    A paper first seen at or after ``since`` cannot have been sent before it, so a run that
    picks from that window needs only what was sent since."""
    result: dict[int, set[str]] = defaultdict(set)
    ordered = sorted(ids)
    with engine.connect() as conn:
        for start in range(0, len(ordered), 500):
            chunk = ordered[start:start + 500]
            query = (select(sent_papers.c.subscriber_id, sent_papers.c.paper_id)
                     .where(sent_papers.c.subscriber_id.in_(chunk)))
            if since is not None:
                query = query.where(sent_papers.c.sent_at >= since)
            for row in conn.execute(query):
                result[row.subscriber_id].add(row.paper_id)
    return result


def outcomes_since(engine: Engine, since: datetime) -> Counter[str]:
    """How many deliveries reached each state since ``since`` (a run's own tally)."""
    query = (select(deliveries.c.state, func.count()).where(deliveries.c.updated_at >= since)
             .group_by(deliveries.c.state))
    with engine.connect() as conn:
        return Counter({state: count for state, count in conn.execute(query)})


def permanent_failures(engine: Engine, subscriber_id: int) -> int:
    query = (select(func.count()).select_from(deliveries)
             .where((deliveries.c.subscriber_id == subscriber_id)
                    & (deliveries.c.state == "failed")))
    with engine.connect() as conn:
        return conn.scalar(query) or 0


# -- named leases (ingest, plan) ---------------------------------------------------------------------


def acquire(engine: Engine, name: str, owner: str, ttl: timedelta,
            now: datetime | None = None) -> tuple[bool, str | None]:
    """Take or renew the lease ``name``: (held, previous holder when it was someone else)."""
    now = now or utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(locks).where(locks.c.name == name)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(locks).values(name=name, owner=owner,
                                                      expires_at=now + ttl))
                return True, None
            except IntegrityError:
                return False, None
        if row.owner != owner and as_utc(row.expires_at) > now and owner_alive(row.owner):
            return False, row.owner
        taken = conn.execute(  # compare-and-swap: a rival that renewed meanwhile keeps it
            update(locks).where((locks.c.name == name) & (locks.c.owner == row.owner)
                                & (locks.c.expires_at == row.expires_at))
            .values(owner=owner, expires_at=now + ttl)).rowcount == 1
        return taken, (row.owner if row.owner != owner else None)


def release(engine: Engine, name: str, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(locks).where((locks.c.name == name) & (locks.c.owner == owner)))


# -- reports ----------------------------------------------------------------------------------


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
    next_attempt_at: datetime | None


def counts(engine: Engine, limit_editions: int = 10) -> list[EditionCount]:
    query = (select(deliveries.c.edition, deliveries.c.state, func.count())
             .group_by(deliveries.c.edition, deliveries.c.state)
             .order_by(desc(deliveries.c.edition), deliveries.c.state))
    with engine.connect() as conn:
        rows = [EditionCount(*row) for row in conn.execute(query)]
    editions = list(dict.fromkeys(row.edition for row in rows))[:limit_editions]
    return [row for row in rows if row.edition in editions]


def problems(engine: Engine, limit: int = 20) -> list[LedgerEntry]:
    """Failures, retries and uncertain messages, most recent first."""
    query = (select(subscribers.c.email, deliveries.c.edition, deliveries.c.state,
                    deliveries.c.attempts, deliveries.c.last_error, deliveries.c.updated_at,
                    deliveries.c.next_attempt_at)
             .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
             .where(deliveries.c.state.in_(["failed", RETRYING, "uncertain", "sending"]))
             .order_by(desc(deliveries.c.updated_at)).limit(limit))
    with engine.connect() as conn:
        return [LedgerEntry(r.email, r.edition, r.state, r.attempts, r.last_error,
                            as_utc(r.updated_at), as_utc(r.next_attempt_at))
                for r in conn.execute(query)]
