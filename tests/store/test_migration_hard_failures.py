"""Migration 0007 on a database full of rows: of the old `failed` deliveries, those the server
refused for good count toward suppression; those that only ran out of attempts do not."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, text

from newsletter.dispatch import ledger
from newsletter.store import migrate
from newsletter.store.engine import open_engine
from newsletter.store.schema import deliveries, metadata

NOW = datetime(2026, 11, 23, 7, tzinfo=UTC)


def test_old_permanent_failures_keep_counting_and_old_give_ups_stop_counting(
        database_url: str) -> None:
    engine = open_engine(database_url)
    migrate.upgrade(engine, metadata, "0004")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (id, email, name, topics, exclude, max_papers, frequency, "
            "weekday, send_time, timezone, status, origin, self_managed, created_at, updated_at)"
            " VALUES (1, 'ada@example.org', '', '[]', '[]', 5, 'daily', 0, '07:00', 'UTC', "
            "'active', '', false, :now, :now)"), {"now": NOW})
        for id_, edition, error in (
                (1, "2026-11-21", "ada@example.org: permanent failure: 550 5.1.1 no such user"),
                (2, "2026-11-22", "gave up after 5 attempts: ada@example.org: temporary "
                                  "failure: 451 4.3.0 try later")):
            conn.execute(text(
                "INSERT INTO deliveries (id, subscriber_id, edition, state, attempts, "
                "last_error, paper_count, created_at, updated_at) VALUES (:id, 1, :edition, "
                "'failed', 1, :error, 3, :now, :now)"),
                {"id": id_, "edition": edition, "error": error, "now": NOW})
    migrate.upgrade(engine, metadata)
    with engine.connect() as conn:
        marked = dict(conn.execute(select(deliveries.c.id, deliveries.c.hard_failure)).all())
    assert marked == {1: True, 2: None}
    assert ledger.hard_failures(engine, 1) == 1
    engine.dispose()
