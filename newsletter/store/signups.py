"""Sign-up requests (double opt-in) and the limits on the emails they cause.

Each request that sends an email is one row of ``signup_requests``: a confirmation (the hash of
its link's token) or an "already subscribed" note. A second request for the same address is
another row, so nobody can change a sign-up they did not make; confirming one activates exactly
what that request asked for and uses it up. The same rows are what the limits count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import ColumnElement, Connection, Engine, func, insert, select, update

from newsletter.models import Subscriber
from newsletter.store.engine import as_utc, utcnow
from newsletter.store.schema import signup_requests, subscribers
from newsletter.store.subscribers import _subscriber_row, load_subscribers

KEPT_FOR = timedelta(days=7)  # rows older than this count toward no limit and confirm nothing


@dataclass(frozen=True)
class Limits:
    """At most this many sign-up emails: to one address in ``address_gap``; from one client
    (network) per hour; in all per hour."""

    address_gap: timedelta = timedelta(minutes=2)
    per_address_per_day: int = 3
    per_client_per_hour: int = 5
    per_hour: int = 100


@dataclass(frozen=True)
class Verdict:
    status: str | None  # the address's subscriber status (None: not a subscriber)
    send: bool  # an email may go out now (the request was recorded)
    refused: str | None = None  # "client" or "everyone": a limit the form must report


def request_signup(engine: Engine, email: str, topics: Sequence[str], *, client: str,
                   token_hash: str | None, limits: Limits,
                   now: datetime | None = None) -> Verdict:
    """Record one sign-up request if the limits allow an email now.

    ``token_hash`` is the hash of the confirmation link's token; it is stored only when the
    address is not subscribed already (then the email is a note, not a link). The limit per
    address is silent (``send`` False, same answer), so the form never tells whether somebody
    asked for an address; the limits per client and in all are said, as they concern no one
    address.
    """
    now, email = now or utcnow(), email.lower()
    with engine.begin() as conn:
        conn.execute(signup_requests.delete()
                     .where(signup_requests.c.requested_at < now - KEPT_FOR))
        status = conn.scalar(select(subscribers.c.status).where(subscribers.c.email == email))
        hour, day = now - timedelta(hours=1), now - timedelta(days=1)
        by_client, by_address = signup_requests.c.client == client, signup_requests.c.email == email
        if _count(conn, hour, by_client) >= limits.per_client_per_hour:
            return Verdict(status, False, "client")
        if _count(conn, hour) >= limits.per_hour:
            return Verdict(status, False, "everyone")
        if (_count(conn, now - limits.address_gap, by_address)
                or _count(conn, day, by_address) >= limits.per_address_per_day):
            return Verdict(status, False)
        conn.execute(insert(signup_requests).values(
            token_hash=None if status == "active" else token_hash, email=email,
            topics=[] if status == "active" else list(topics), client=client,
            requested_at=now))
    return Verdict(status, True)


def _count(conn: Connection, since: datetime, where: ColumnElement[bool] | None = None) -> int:
    query = select(func.count()).select_from(signup_requests) \
        .where(signup_requests.c.requested_at > since)
    if where is not None:
        query = query.where(where)
    return conn.scalar(query) or 0


@dataclass(frozen=True)
class Pending:
    email: str
    topics: tuple[str, ...]
    requested_at: datetime


def pending_signup(engine: Engine, token_hash: str) -> Pending | None:
    """The sign-up a confirmation link stands for, while it waits (None: used up, or gone)."""
    with engine.connect() as conn:
        row = conn.execute(select(signup_requests)
                           .where(signup_requests.c.token_hash == token_hash)).first()
    if row is None:
        return None
    return Pending(row.email, tuple(str(t) for t in row.topics or ()),
                   as_utc(row.requested_at))  # type: ignore[arg-type]


def confirm_signup(engine: Engine, token_hash: str, now: datetime | None = None
                   ) -> Subscriber | None:
    """Make the request's address active with the topics that request asked for, and use the
    request up; None when no request has this token (used, or never made).

    A returning address keeps its other preferences; it becomes ``origin="web"`` and
    self-managed, so neither the removal of a file entry nor the entry itself undoes this.
    """
    now = now or utcnow()
    with engine.begin() as conn:
        request = conn.execute(select(signup_requests)
                               .where(signup_requests.c.token_hash == token_hash)).first()
        if request is None:
            return None
        email = request.email
        values = {"topics": list(request.topics), "status": "active", "origin": "web",
                  "self_managed": True, "updated_at": now}
        found = conn.execute(update(subscribers).where(subscribers.c.email == email)
                             .values(**values))
        if found.rowcount == 0:
            fresh = _subscriber_row(Subscriber(email=email, name="", topics=()))
            conn.execute(insert(subscribers).values({**fresh, **values, "created_at": now}))
        # Used up: this link, and any other link still waiting for the address (a stranger's
        # request must not linger to be confirmed later over what its owner chose).
        conn.execute(signup_requests.update().where(signup_requests.c.email == email)
                     .values(token_hash=None))
    return load_subscribers(engine, statuses=None, email=email)[0]
