"""The delivery ledger: who got which edition, and which papers each person has been sent.

One row per (subscriber, edition) under a unique key, so a second digest for the same edition
cannot exist; one row per (subscriber, paper), so no paper reaches the same person twice.
States::

    (none) -> pending (planned; claimed by a worker, see claims.py) -> sending -> sent
              pending -> skipped (nothing relevant and new, or stale: due too long ago)
              sending -> retrying -> sending ...
              sending -> failed (5xx; or out of attempts)
              sending -> uncertain -> (a person: `deliveries resolve`) sent | pending

``sending`` is written before a message goes and its outcome right after the server's reply
(``journal.py``): a crash loses at most the messages in flight, which become ``uncertain``:
reported for a person to decide, never resent blindly. This module holds the reads and the
named leases; the queue's writes are in ``claims.py`` and ``journal.py``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Collection

from sqlalchemy import Connection, Engine, case, delete, desc, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.dispatch.claims import lock_owner, owner_alive
from newsletter.errors import NewsletterError
from newsletter.store.engine import as_utc, utcnow
from newsletter.store.schema import deliveries, locks, sent_papers, subscribers

__all__ = ["lock_owner", "acquire", "release", "states_for", "sent_papers_by_subscriber",
           "hard_failures", "suppress_if_due", "counts", "problems", "count_states",
           "resolve", "DONE", "HANDLED", "RETRYING", "STALE_PREFIX"]

DONE = ("sent", "skipped", "failed", "uncertain")  # never picked up again automatically
HANDLED = (*DONE, "sending")  # not to be planned, composed or sent again
RETRYING = "retrying"
STALE_PREFIX = "stale:"  # the last_error of a row skipped for being too old to send


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


def hard_failures(engine: Engine, subscriber_id: int) -> int:
    """The address's permanent, address-level failures (``faults.counts_toward_suppression``)
    since an operator last reactivated it."""
    d, s = deliveries.c, subscribers.c
    query = (select(func.count()).select_from(deliveries.join(subscribers, s.id == d.subscriber_id))
             .where((d.subscriber_id == subscriber_id) & d.hard_failure.is_(True)
                    & (s.reactivated_at.is_(None) | (d.updated_at > s.reactivated_at))))
    with engine.connect() as conn:
        return conn.scalar(query) or 0


def suppress_if_due(engine: Engine, subscriber_id: int, limit: int) -> bool:
    """The suppression policy, applied: once an address has ``limit`` hard failures
    (NEWSLETTER_SUPPRESS_AFTER), an active address becomes ``bounced`` and gets no more mail
    until an operator reactivates it. True when this call suppressed it. Record the failure
    (``deliveries.hard_failure``: a refused RCPT/DATA, or a hard bounce) first."""
    if hard_failures(engine, subscriber_id) < limit:
        return False
    with engine.begin() as conn:
        return conn.execute(update(subscribers)
                            .where((subscribers.c.id == subscriber_id)
                                   & (subscribers.c.status == "active"))
                            .values(status="bounced", updated_at=utcnow())).rowcount == 1


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
    id: int = 0
    message_id: str | None = None


def _label() -> Any:
    """A row's state as `status` shows it: a skip for staleness apart from "nothing new"."""
    d = deliveries.c
    return case(((d.state == "skipped") & d.last_error.like(f"{STALE_PREFIX}%"),
                 "skipped (stale)"), else_=d.state)


def counts(engine: Engine, limit_editions: int = 10) -> list[EditionCount]:
    label = _label()
    query = (select(deliveries.c.edition, label, func.count())
             .group_by(deliveries.c.edition, label)
             .order_by(desc(deliveries.c.edition), label))
    with engine.connect() as conn:
        rows = [EditionCount(*row) for row in conn.execute(query)]
    editions = list(dict.fromkeys(row.edition for row in rows))[:limit_editions]
    return [row for row in rows if row.edition in editions]


ATTENTION = ("failed", RETRYING, "uncertain", "sending")


def problems(engine: Engine, limit: int | None = 20,
             states: Collection[str] = ATTENTION) -> list[LedgerEntry]:
    """Rows in ``states`` (failures, retries, uncertain and in-flight messages), most recent
    first; ``limit=None``: all of them."""
    d = deliveries.c
    query = (select(subscribers.c.email, d.edition, d.state, d.attempts, d.last_error,
                    d.updated_at, d.next_attempt_at, d.id, d.message_id)
             .join(subscribers, subscribers.c.id == d.subscriber_id)
             .where(d.state.in_(list(states))).order_by(desc(d.updated_at), desc(d.id)))
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [LedgerEntry(r.email, r.edition, r.state, r.attempts, r.last_error,
                            as_utc(r.updated_at), as_utc(r.next_attempt_at), r.id, r.message_id)
                for r in conn.execute(query)]


def count_states(engine: Engine, states: Collection[str] = ATTENTION) -> dict[str, int]:
    d = deliveries.c
    query = select(d.state, func.count()).where(d.state.in_(list(states))).group_by(d.state)
    with engine.connect() as conn:
        return {state: count for state, count in conn.execute(query)}


class NotResolvable(NewsletterError):
    """Only an uncertain delivery waits for a person's verdict."""


def resolve(engine: Engine, delivery_id: int, sent: bool,
            now: datetime | None = None) -> LedgerEntry:
    """A person's verdict on an uncertain delivery, after looking its Message-ID up in the
    relay's log: ``sent`` (it arrived: done) or not (queued again, due now: the next `send`,
    `run` tick or worker sends it). Returns the row as it was."""
    now = now or utcnow()
    d = deliveries.c
    with engine.begin() as conn:
        row = conn.execute(select(d.state, d.last_error).where(d.id == delivery_id)).first()
        if row is None:
            raise NotResolvable(f"there is no delivery {delivery_id}: see `newsletter status`")
        if row.state != "uncertain":
            raise NotResolvable(f"delivery {delivery_id} is {row.state}, not uncertain: only "
                                "uncertain deliveries wait for a verdict")
        before = _entry(conn, delivery_id)
        values: dict[str, Any] = (
            {"state": "sent", "last_error": f"marked sent by an operator; was: {row.last_error}"}
            if sent else
            {"state": "pending", "due_at": now, "next_attempt_at": None,
             "last_error": f"requeued by an operator; was: {row.last_error}"})
        conn.execute(update(deliveries).where((d.id == delivery_id) & (d.state == "uncertain"))
                     .values(**values, claimed_by=None, lease_until=None, updated_at=now))
    return before


def _entry(conn: Connection, delivery_id: int) -> LedgerEntry:
    d = deliveries.c
    r = conn.execute(select(subscribers.c.email, d.edition, d.state, d.attempts, d.last_error,
                            d.updated_at, d.next_attempt_at, d.id, d.message_id)
                     .join(subscribers, subscribers.c.id == d.subscriber_id)
                     .where(d.id == delivery_id)).one()
    return LedgerEntry(r.email, r.edition, r.state, r.attempts, r.last_error,
                       as_utc(r.updated_at), as_utc(r.next_attempt_at), r.id, r.message_id)
