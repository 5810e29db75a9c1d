"""The delivery ledger: who got which edition, and which papers each person has been sent.

One row per (subscriber, edition) under a unique key, so a second digest for the same edition
cannot exist; one row per (subscriber, paper), so no paper reaches the same person twice.
States::

    (none) -> sending -> sent
                      -> retrying (4xx, dropped before DATA; next_attempt_at) -> sending ...
                      -> failed (5xx, or out of attempts)
                      -> uncertain (the reply to DATA was lost, or the run died mid-send)
    (none) -> skipped (nothing relevant and new)

A row is written right after each SMTP reply: a crash loses at most the messages in flight,
which the next dispatcher finds as ``sending`` and turns into ``uncertain``: reported for a
person to decide, never resent blindly.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Collection, Iterable

from sqlalchemy import Engine, delete, desc, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .store import as_utc, deliveries, locks, sent_papers, subscribers, utcnow

DONE = ("sent", "skipped", "failed", "uncertain")  # never picked up again automatically
RETRYING = "retrying"


def states_for(engine: Engine, editions: dict[int, str]) -> dict[int, tuple[str, datetime | None]]:
    """(state, next_attempt_at) of each subscriber's given edition; absent: not started."""
    if not editions:
        return {}
    query = (select(deliveries.c.subscriber_id, deliveries.c.edition, deliveries.c.state,
                    deliveries.c.next_attempt_at)
             .where(deliveries.c.edition.in_(set(editions.values()))))
    with engine.connect() as conn:
        return {row.subscriber_id: (row.state, as_utc(row.next_attempt_at))
                for row in conn.execute(query)
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


def begin(engine: Engine, subscriber_id: int, edition: str, paper_count: int,
          now: datetime | None = None) -> tuple[int, int] | None:
    """Claim the (subscriber, edition) row as ``sending``: a new row, or one whose retry is due.
    Returns (delivery id, attempts so far including this one); None when the edition is done,
    in flight elsewhere, or waiting for its retry time."""
    now = now or utcnow()
    key = (deliveries.c.subscriber_id == subscriber_id) & (deliveries.c.edition == edition)
    with engine.begin() as conn:
        try:
            with conn.begin_nested():
                row = conn.execute(insert(deliveries).values(
                    subscriber_id=subscriber_id, edition=edition, state="sending", attempts=1,
                    paper_count=paper_count, created_at=now, updated_at=now,
                ).returning(deliveries.c.id, deliveries.c.attempts)).one()
                return (row.id, row.attempts)
        except IntegrityError:
            pass
        # A conditional update is the claim: of two dispatchers only one sees rowcount 1.
        claimed = conn.execute(
            update(deliveries)
            .where(key & (deliveries.c.state == RETRYING)
                   & (deliveries.c.next_attempt_at <= now))
            .values(state="sending", attempts=deliveries.c.attempts + 1,
                    paper_count=paper_count, next_attempt_at=None, updated_at=now)
            .returning(deliveries.c.id, deliveries.c.attempts)).one_or_none()
        return None if claimed is None else (claimed.id, claimed.attempts)


def _set(engine: Engine, delivery_id: int, **values: object) -> None:
    with engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == delivery_id)
                     .values(**values, updated_at=utcnow()))


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


def mark_retrying(engine: Engine, delivery_id: int, error: str, next_attempt_at: datetime) -> None:
    _set(engine, delivery_id, state=RETRYING, last_error=error[:1000],
         next_attempt_at=next_attempt_at)


def mark_failed(engine: Engine, delivery_id: int, error: str) -> None:
    _set(engine, delivery_id, state="failed", last_error=error[:1000], next_attempt_at=None)


def mark_uncertain(engine: Engine, delivery_id: int, error: str, message_id: str) -> None:
    _set(engine, delivery_id, state="uncertain", last_error=error[:1000], message_id=message_id)


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


def permanent_failures(engine: Engine, subscriber_id: int) -> int:
    query = (select(func.count()).select_from(deliveries)
             .where((deliveries.c.subscriber_id == subscriber_id)
                    & (deliveries.c.state == "failed")))
    with engine.connect() as conn:
        return conn.scalar(query) or 0


def orphans_to_uncertain(engine: Engine) -> int:
    """Rows left ``sending`` by a dispatcher that died: the server may or may not have them."""
    with engine.begin() as conn:
        return conn.execute(
            update(deliveries).where(deliveries.c.state == "sending")
            .values(state="uncertain", updated_at=utcnow(),
                    last_error="the sending process stopped before the server's reply "
                               "was recorded")).rowcount


# -- the dispatcher lease ---------------------------------------------------------------------


def lock_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def _alive(owner: str) -> bool:
    """A holder on this host whose process is gone is dead now, not when its lease expires."""
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(rest.partition(":")[0]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


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
        if row.owner != owner and as_utc(row.expires_at) > now and _alive(row.owner):
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
