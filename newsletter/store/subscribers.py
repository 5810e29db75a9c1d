"""Subscriber queries: the mirror of the subscribers/ files, and what people change
themselves through ``newsletter serve`` (sign-up, preferences, unsubscribe)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Collection, Iterable, Iterator, Sequence

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.compose import tokens
from newsletter.models import Subscriber
from newsletter.safetext import MAX_NAME_CHARS, MAX_TOPIC_CHARS, repair
from newsletter.store.engine import utcnow
from newsletter.store.readers import forget_reader
from newsletter.store.schema import (
    clicks,
    deliveries,
    legacy_unsubscribe_until,
    new_link_key,
    returns,
    sent_papers,
    signup_requests,
    subscribers,
)


def _subscriber_row(sub: Subscriber) -> dict[str, Any]:
    return {
        "email": sub.email, "name": sub.name, "topics": list(sub.topics),
        "exclude": list(sub.exclude), "max_papers": sub.max_papers, "frequency": sub.frequency,
        "weekday": sub.weekday, "send_time": sub.send_time.strftime("%H:%M"),
        "timezone": sub.timezone, "origin": sub.origin,
    }


def _subscriber(row: Any) -> Subscriber:
    # A row an older version wrote may hold a tab or a control character in a name or topic:
    # repaired here (as spaces), so that pages, the gallery and `send` all get clean text.
    return Subscriber(
        id=row.id, email=row.email, name=repair(row.name, MAX_NAME_CHARS),
        topics=_repaired(row.topics), exclude=_repaired(row.exclude),
        max_papers=row.max_papers, frequency=row.frequency,
        weekday=row.weekday, send_time=time.fromisoformat(row.send_time),
        timezone=row.timezone, status=row.status, origin=row.origin,
        link_id=row.link_id or "", link_key=row.link_key or "",
    )


def _repaired(topics: Sequence[str]) -> tuple[str, ...]:
    repaired = (repair(str(topic), MAX_TOPIC_CHARS) for topic in topics)
    return tuple(dict.fromkeys(topic for topic in repaired if topic))


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
    held: frozenset[str] = frozenset()  # not listed, but their entry or file was unreadable


def sync_subscribers(engine: Engine, listed: Sequence[Subscriber], *,
                     held: Collection[str] = (), unread: Collection[str] = ()) -> SyncReport:
    """Mirror the subscribers/ files into the database (see ``_sync``); when another process
    inserted the same new addresses meanwhile, the second pass finds them and updates."""
    try:
        return _sync(engine, listed, frozenset(held), frozenset(unread))
    except IntegrityError:
        return _sync(engine, listed, frozenset(held), frozenset(unread))


def _sync(engine: Engine, listed: Sequence[Subscriber], held: frozenset[str],
          unread: frozenset[str]) -> SyncReport:
    """Mirror the subscribers/ files into the database.

    What people did themselves wins over the files: an unsubscribed or bounced address stays
    so, and self-managed preferences are not overwritten. Addresses that came from the files
    and are no longer listed become ``removed`` (kept, so the ledger keeps its history).
    Except the ``held`` addresses (their entry is there but could not be read) and everyone
    stored from an ``unread`` file: a typo or a bad save must not unsubscribe anybody, so
    they stay exactly as stored until their entry reads again.
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
        unlisted = [row for email, row in existing.items()
                    if email not in by_email and row.origin != "web"]
        kept = {row.email for row in unlisted
                if row.email in held or row.origin.rpartition(":")[0] in unread}
        report.held = frozenset(kept)
        gone = [row.id for row in unlisted if row.status == "active" and row.email not in kept]
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


def subscriber_id(engine: Engine, email: str) -> tuple[int, str] | None:
    """The id and status of the subscriber with this address."""
    with engine.connect() as conn:
        row = conn.execute(select(subscribers.c.id, subscribers.c.status)
                           .where(subscribers.c.email == email.lower())).first()
    return None if row is None else (row.id, row.status)


def reactivate(engine: Engine, email: str, now: datetime | None = None) -> str | None:
    """Make a bounced address active again, its earlier hard failures forgiven (they count
    only after ``reactivated_at``). Returns its status before (None: no such subscriber);
    only ``bounced`` changes."""
    now = now or utcnow()
    with engine.begin() as conn:
        status = conn.scalar(select(subscribers.c.status)
                             .where(subscribers.c.email == email.lower()))
        if status == "bounced":
            conn.execute(update(subscribers)
                         .where((subscribers.c.email == email.lower())
                                & (subscribers.c.status == "bounced"))
                         .values(status="active", reactivated_at=now, updated_at=now))
    return status


def subscriber_status(engine: Engine, email: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(select(subscribers.c.status)
                           .where(subscribers.c.email == email.lower()))


def unsubscribe(engine: Engine, email: str) -> bool:
    """Stop every digest to ``email`` now and for good (until they subscribe again
    themselves); False when the address is not on the list. Idempotent."""
    with engine.begin() as conn:
        conn.execute(update(subscribers)
                     .where(subscribers.c.email == email.lower(),
                            subscribers.c.status != "unsubscribed")
                     .values(status="unsubscribed", updated_at=utcnow()))
        found = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == email.lower()))
        if found is not None:  # what they told us about papers leaves with them
            forget_reader(conn, found)
        return found is not None


def forget(engine: Engine, email: str) -> bool:
    """Delete the subscriber and every row about them (deliveries, papers sent, clicks,
    returns, feedback, library, sign-up requests); False when the address is unknown."""
    address = email.lower()
    with engine.begin() as conn:
        found = conn.scalar(select(subscribers.c.id).where(subscribers.c.email == address))
        conn.execute(delete(signup_requests).where(signup_requests.c.email == address))
        if found is None:
            return False
        forget_reader(conn, found)
        for table in (sent_papers, clicks, returns, deliveries):
            conn.execute(delete(table).where(table.c.subscriber_id == found))
        conn.execute(delete(subscribers).where(subscribers.c.id == found))
        return True


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



# -- the keys of each person's links (compose/tokens.py) ---------------------------------------

@dataclass(frozen=True)
class LinkOwner:
    """Whose links carry ``link_id``, and the keys their signatures may be made with."""

    subscriber_id: int
    email: str
    status: str
    link_id: str
    link_key: str
    retired: tuple[tuple[str, datetime], ...]  # keys replaced by "sign out every link", and when


def link_owner(engine: Engine, link_id: str) -> LinkOwner | None:
    columns = (subscribers.c.id, subscribers.c.email, subscribers.c.status,
               subscribers.c.link_id, subscribers.c.link_key, subscribers.c.retired_link_keys)
    with engine.connect() as conn:
        row = conn.execute(select(*columns).where(subscribers.c.link_id == link_id)).first()
    if row is None or not row.link_key:
        return None
    return LinkOwner(row.id, row.email, row.status, row.link_id, row.link_key,
                     _retired(row.retired_link_keys))


def _retired(value: Any) -> tuple[tuple[str, datetime], ...]:
    keys = []
    for item in value or ():
        try:
            keys.append((str(item[0]), datetime.fromisoformat(str(item[1]))))
        except (TypeError, ValueError, IndexError):
            continue  # a damaged entry opens nothing
    return tuple(keys)


def sign_out_links(engine: Engine, subscriber_id: int, *, keep_for: timedelta,
                   now: datetime | None = None) -> None:
    """A new key for every link of this person: what the old links could do stops now, except
    what ``keep_for`` lets the retired keys still do (tokens.py decides which purposes)."""
    now = now or utcnow()
    with engine.begin() as conn:
        row = conn.execute(select(subscribers.c.link_key, subscribers.c.retired_link_keys)
                           .where(subscribers.c.id == subscriber_id)).first()
        if row is None:
            return
        kept = [[key, when.isoformat()] for key, when in _retired(row.retired_link_keys)
                if when > now - keep_for]
        retired = ([[row.link_key, now.isoformat()]] if row.link_key else []) + kept
        conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(
            link_key=new_link_key(), retired_link_keys=retired[:20], updated_at=now))


@dataclass(frozen=True)
class Owner:
    """The subscriber a valid link belongs to."""

    subscriber_id: int
    email: str
    status: str
    current: bool  # made with the person's current key (False: a retired one, in its grace)
    item: str | None = None  # what the link is about, for purposes about one thing (a paper)


def resolve_link(engine: Engine, secret: str, purpose: str, token: str,
                 now: datetime) -> Owner | None:
    """The owner of ``token`` if it is ours, intact, for ``purpose`` and not signed out (the
    rules are ``compose/tokens.py``'s; the keys are here); None for anything else. Used by the
    web pages and by the mailto: unsubscribe requests read from the mailbox of returns."""
    parsed = tokens.parse(token, purpose)
    found = None if parsed is None else link_owner(engine, parsed.link_id)
    if parsed is None or found is None:
        return _legacy(engine, secret, purpose, token, now)
    verdict = tokens.check(secret, purpose, parsed, found.link_key, found.retired, now)
    if verdict is None:
        return None
    return Owner(found.subscriber_id, found.email, found.status, verdict == "current",
                 parsed.item)


def _legacy(engine: Engine, secret: str, purpose: str, token: str,
            now: datetime) -> Owner | None:
    """An unsubscribe link from before per-subscriber keys, while its grace lasts."""
    if purpose != "unsubscribe":
        return None
    email = tokens.legacy_unsubscribe_address(secret, token)
    if email is None:
        return None
    until = legacy_unsubscribe_until(engine)
    found = subscriber_id(engine, email) if until is not None and now < until else None
    return None if found is None else Owner(found[0], email, found[1], current=False)
