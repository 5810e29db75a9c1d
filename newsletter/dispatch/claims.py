"""The deliveries table as a work queue that any number of workers share, on one host or many.

A run first *plans*: one ``pending`` row per (subscriber, edition) that is due, inserted in bulk
under the table's unique key, so planning twice (two schedulers, a rerun) adds nothing. Workers
then *claim* batches with ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``: on
PostgreSQL concurrent workers skip each other's rows instead of waiting; SQLite has one writer
at a time, so the same statement is simply atomic there. A claim stamps the rows with the
worker's name and a lease that the worker renews while it lives. When a worker dies, its
untouched rows become claimable once the lease runs out (at once when it was a process on this
host that no longer exists) and its rows left ``sending`` become ``uncertain``: the server may
or may not have them, so a person decides (``newsletter status``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import Engine, func, select, update

from newsletter.store.engine import as_utc, insert_ignore, utcnow
from newsletter.store.schema import deliveries

PENDING, SENDING, RETRYING = "pending", "sending", "retrying"
_d = deliveries.c


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    subscriber_id: int
    edition: str
    attempts: int  # made before this claim
    due_at: datetime | None = None  # when the digest was due: past the stale limit, skip it

    def stale(self, now: datetime, limit: timedelta) -> bool:
        return self.due_at is not None and now - self.due_at > limit


def lock_owner() -> str:
    """A worker's name: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def owner_alive(owner: str) -> bool:
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


Wanted = tuple[int, str] | tuple[int, str, datetime]


def plan(engine: Engine, wanted: Iterable[Wanted], now: datetime | None = None) -> int:
    """Queue a ``pending`` row for each (subscriber id, edition[, due at]) not in the ledger
    yet (due at: ``now`` unless given); returns how many were new."""
    now = now or utcnow()
    rows = [{"subscriber_id": want[0], "edition": want[1], "state": PENDING, "attempts": 0,
             "paper_count": 0, "due_at": want[2] if len(want) > 2 else now,  # type: ignore[misc]
             "created_at": now, "updated_at": now}
            for want in wanted]
    if not rows:
        return 0
    with engine.begin() as conn:
        # RETURNING lists only the rows inserted (psycopg reports no executemany rowcount).
        return len(conn.execute(insert_ignore(engine, deliveries, ("subscriber_id", "edition")).returning(_d.id), rows).all())


def claim(engine: Engine, owner: str, limit: int, lease: timedelta,
          now: datetime | None = None) -> list[Claim]:
    """Take up to ``limit`` rows that are pending, or retrying and due, and held by nobody."""
    now = now or utcnow()
    free = (_d.state == PENDING) | ((_d.state == RETRYING) & (_d.next_attempt_at <= now))
    unheld = _d.lease_until.is_(None) | (_d.lease_until < now)
    chosen = (select(_d.id).where(free & unheld).limit(limit)
              .with_for_update(skip_locked=True))
    with engine.begin() as conn:
        rows = conn.execute(
            update(deliveries).where(_d.id.in_(chosen))
            .values(claimed_by=owner, lease_until=now + lease)
            .returning(_d.id, _d.subscriber_id, _d.edition, _d.attempts, _d.due_at,
                       _d.created_at)).all()
    # A row planned before due_at existed is as old as its planning.
    return sorted((Claim(r.id, r.subscriber_id, r.edition, r.attempts,
                         as_utc(r.due_at or r.created_at)) for r in rows), key=lambda c: c.id)


def renew(engine: Engine, owner: str, lease: timedelta, now: datetime | None = None) -> None:
    """Extend the lease on every row this worker holds: queued (pending, or a retry that came
    due), and in flight (``sending``: a reaper would call it uncertain)."""
    now = now or utcnow()
    with engine.begin() as conn:
        conn.execute(update(deliveries)
                     .where((_d.claimed_by == owner)
                            & _d.state.in_((PENDING, RETRYING, SENDING)))
                     .values(lease_until=now + lease))


def release(engine: Engine, owner: str) -> int:
    """Give back the rows this worker claimed but did not start (a stop was requested)."""
    with engine.begin() as conn:
        return conn.execute(update(deliveries)
                            .where((_d.claimed_by == owner) & (_d.state != SENDING))
                            .values(claimed_by=None, lease_until=None)).rowcount


@dataclass(frozen=True)
class Reaped:
    uncertain: int  # rows a dead worker left ``sending``
    freed: int  # untouched rows of dead workers on this host, claimable again at once


def reap(engine: Engine, now: datetime | None = None) -> Reaped:
    """Clean up after workers that are gone."""
    now = now or utcnow()
    with engine.begin() as conn:
        holders = conn.scalars(select(_d.claimed_by).distinct().where(
            _d.state.in_((PENDING, SENDING, RETRYING)) & _d.claimed_by.is_not(None)
            & (_d.lease_until >= now))).all()
        dead = [owner for owner in holders if not owner_alive(owner)]
        gone = (_d.lease_until.is_(None) | (_d.lease_until < now) | _d.claimed_by.in_(dead))
        uncertain = conn.execute(
            update(deliveries).where((_d.state == SENDING) & gone)
            .values(state="uncertain", claimed_by=None, lease_until=None, updated_at=now,
                    last_error="the sending process stopped before the server's reply "
                               "was recorded")).rowcount
        freed = conn.execute(
            update(deliveries).where(_d.claimed_by.in_(dead))
            .values(claimed_by=None, lease_until=None)).rowcount if dead else 0
    return Reaped(uncertain, freed)


def unfinished(engine: Engine, now: datetime | None = None) -> tuple[int, int]:
    """(rows pending or being sent, rows retrying whose time has come): a draining worker
    stops when both are zero and it has no retries of its own to wait for."""
    now = now or utcnow()
    with engine.connect() as conn:
        open_ = conn.scalar(select(func.count()).select_from(deliveries)
                            .where(_d.state.in_((PENDING, SENDING)))) or 0
        due = conn.scalar(select(func.count()).select_from(deliveries)
                          .where((_d.state == RETRYING) & (_d.next_attempt_at <= now))) or 0
    return open_, due
