"""Returns queries: record what a message from the mailbox of returns reported, and apply it to
its subscriber in the same transaction; the tallies ``newsletter status`` shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, case, func, select, update

from newsletter.store.engine import insert_ignore
from newsletter.store.readers import forget_reader
from newsletter.store.schema import deliveries, returns, subscribers

HARD, SOFT = "hard-bounce", "soft-bounce"
UNSUBSCRIBING = ("complaint", "unsubscribe")


@dataclass(frozen=True, slots=True)
class Returned:
    key: str
    kind: str
    subscriber_id: int | None
    edition: str | None
    status: str | None
    detail: str


def locate_delivery(engine: Engine, message_id: str) -> tuple[int, str] | None:
    """(subscriber id, edition) of the digest sent with ``message_id``."""
    query = (select(deliveries.c.subscriber_id, deliveries.c.edition)
             .where(deliveries.c.message_id == message_id))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (row.subscriber_id, row.edition) if row else None


def find_subscriber(engine: Engine, email: str | None = None,
                    subscriber_id: int | None = None) -> tuple[int, str] | None:
    """(id, email) of the subscriber with this address, or this id, if there is one."""
    query = select(subscribers.c.id, subscribers.c.email)
    query = (query.where(subscribers.c.email == email.lower()) if email is not None
             else query.where(subscribers.c.id == subscriber_id))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (row.id, row.email) if row else None


def record_return(engine: Engine, returned: Returned, now: datetime,
                  soft_limit: int) -> str | None:
    """Record ``returned`` and apply it, in one transaction: a hard bounce suppresses the
    address (status ``bounced``), soft bounces on ``soft_limit`` editions do, a complaint or an
    unsubscribe request unsubscribes it. The effect (suppressed, unsubscribed, counted, none),
    or None when this message was recorded before: then nothing changes."""
    row = {"message_key": returned.key, "kind": returned.kind,
           "subscriber_id": returned.subscriber_id, "edition": returned.edition,
           "status": returned.status, "detail": returned.detail, "effect": "none",
           "received_at": now}
    with engine.begin() as conn:
        added = conn.execute(insert_ignore(engine, returns, ("message_key",)).values(**row))
        if added.rowcount == 0:
            return None
        effect = _apply(conn, returned, now, soft_limit)
        conn.execute(update(returns).where(returns.c.message_key == returned.key)
                     .values(effect=effect))
    return effect


def _apply(conn: Connection, returned: Returned, now: datetime, soft_limit: int) -> str:
    sub_id, kind = returned.subscriber_id, returned.kind
    if sub_id is None:
        return "none"
    this = subscribers.c.id == sub_id
    if kind in UNSUBSCRIBING:
        changed = conn.execute(update(subscribers).where(this, subscribers.c.status
                                                         != "unsubscribed")
                               .values(status="unsubscribed", updated_at=now)).rowcount
        forget_reader(conn, sub_id)  # what they told us about papers leaves with them
        return "unsubscribed" if changed else "none"
    if kind == SOFT:
        # those since an operator last reactivated the address (`subscribers reactivate`)
        since = select(subscribers.c.reactivated_at).where(this).scalar_subquery()
        editions = conn.scalar(select(func.count(func.distinct(returns.c.edition)))
                               .where(returns.c.subscriber_id == sub_id,
                                      returns.c.kind == SOFT,
                                      since.is_(None) | (returns.c.received_at > since)))
        if (editions or 0) < soft_limit:
            return "counted"
    elif kind != HARD:
        return "none"
    elif returned.edition is not None:  # the ledger's record of address-level failures too
        conn.execute(update(deliveries).where(deliveries.c.subscriber_id == sub_id,
                                              deliveries.c.edition == returned.edition)
                     .values(hard_failure=True))
    changed = conn.execute(update(subscribers)
                           .where(this, subscribers.c.status.in_(("active", "pending")))
                           .values(status="bounced", updated_at=now)).rowcount
    return "suppressed" if changed else ("counted" if kind == SOFT else "none")


@dataclass(frozen=True, slots=True)
class EditionReturns:
    edition: str  # "" for returns that name no edition (a mailto unsubscribe)
    hard: int
    soft: int
    complaints: int
    unsubscribes: int
    suppressed: int  # addresses suppressed or unsubscribed by these returns


def returns_by_edition(engine: Engine, limit_editions: int = 10) -> list[EditionReturns]:
    counted = [func.sum(case((returns.c.kind == kind, 1), else_=0))
               for kind in (HARD, SOFT, "complaint", "unsubscribe")]
    acted = func.sum(case((returns.c.effect.in_(("suppressed", "unsubscribed")), 1), else_=0))
    edition = func.coalesce(returns.c.edition, "")
    query = (select(edition, *counted, acted).group_by(edition)
             .order_by(edition.desc()).limit(limit_editions))
    with engine.connect() as conn:
        return [EditionReturns(row[0], *(int(v or 0) for v in row[1:]))
                for row in conn.execute(query)]
