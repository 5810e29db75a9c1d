"""Returns and the suppression policy: a hard bounce is recorded on its delivery as a hard
failure, and an operator's `subscribers reactivate` forgives the soft bounces before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from newsletter.dispatch import claims, ledger
from newsletter.models import Subscriber
from newsletter.store import schema
from newsletter.store.returns import HARD, SOFT, Returned, record_return
from newsletter.store.subscribers import reactivate, subscriber_status, sync_subscribers

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
ADA = "ada@example.org"


def ada(engine: Engine) -> int:
    sync_subscribers(engine, [Subscriber(email=ADA, name="", topics=("GNN",))])
    with engine.connect() as conn:
        return conn.scalar(select(schema.subscribers.c.id))  # type: ignore[return-value]


def test_after_reactivate_earlier_soft_bounces_no_longer_count(engine: Engine) -> None:
    sub = ada(engine)
    for n, edition in enumerate(("2026-11-21", "2026-11-22")):
        record_return(engine, Returned(f"soft-{n}", SOFT, sub, edition, "4.2.2", "full"),
                      T0 + timedelta(minutes=n), soft_limit=2)
    assert subscriber_status(engine, ADA) == "bounced"
    assert reactivate(engine, ADA, now=T0 + timedelta(hours=1)) == "bounced"
    effect = record_return(engine, Returned("soft-3", SOFT, sub, "2026-11-24", "4.2.2", "full"),
                           T0 + timedelta(hours=2), soft_limit=2)
    assert effect == "counted" and subscriber_status(engine, ADA) == "active"


def test_a_hard_bounce_marks_its_delivery_as_a_hard_failure(engine: Engine) -> None:
    sub = ada(engine)
    claims.plan(engine, [(sub, "2026-11-23")])
    effect = record_return(engine, Returned("hard-1", HARD, sub, "2026-11-23", "5.1.1",
                                            "no such user"), T0, soft_limit=5)
    assert effect == "suppressed"
    assert ledger.hard_failures(engine, sub) == 1
