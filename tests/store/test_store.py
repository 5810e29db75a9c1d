from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Engine

from newsletter.models import Subscriber
from newsletter.store.engine import connect, open_engine
from newsletter.store.migrate import upgrade
from newsletter.store.schema import metadata, secret_key
from newsletter.store.subscribers import load_subscribers, set_subscriber_status, sync_subscribers

ADA = Subscriber(email="ada@example.org", name="Ada", topics=("GNN",), origin="a.toml:1")
BOB = Subscriber(email="bob@example.org", name="Bob", topics=("OT",), origin="a.toml:6")


def test_sync_adds_updates_and_leaves_unchanged(engine: Engine) -> None:
    assert sync_subscribers(engine, [ADA, BOB]).added == 2
    report = sync_subscribers(engine, [replace(ADA, topics=("GNN", "PINNs")), BOB])
    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    (ada,) = load_subscribers(engine, email="ADA@example.org")
    assert ada.topics == ("GNN", "PINNs") and ada.status == "active" and ada.id


def test_an_unsubscribe_wins_over_the_files(engine: Engine) -> None:
    sync_subscribers(engine, [ADA, BOB])
    assert set_subscriber_status(engine, "ada@example.org", "unsubscribed")
    report = sync_subscribers(engine, [ADA, BOB])
    assert report.kept_unsubscribed == 1
    assert [s.email for s in load_subscribers(engine)] == ["bob@example.org"]


def test_an_address_dropped_from_the_files_is_removed_and_can_come_back(engine: Engine) -> None:
    sync_subscribers(engine, [ADA, BOB])
    assert sync_subscribers(engine, [BOB]).removed == 1
    assert [s.email for s in load_subscribers(engine)] == ["bob@example.org"]
    sync_subscribers(engine, [ADA, BOB])
    assert len(load_subscribers(engine)) == 2


def test_the_generated_signing_key_is_made_once_and_kept(engine: Engine) -> None:
    key = secret_key(engine)
    assert len(key) >= 40 and secret_key(engine) == key


def test_a_database_from_an_older_version_gains_the_new_columns(database_url: str) -> None:
    from sqlalchemy import inspect, text
    engine = open_engine(database_url)
    # the schema of the last version before migrations; what came after (0005 on) no such
    # version had
    upgrade(engine, metadata, "0004")
    with engine.begin() as conn:  # as a version from before migrations left it
        conn.execute(text("ALTER TABLE deliveries DROP COLUMN next_attempt_at"))
        conn.execute(text("ALTER TABLE papers DROP COLUMN ai_summary"))
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    upgrading = open_engine(database_url)
    upgrade(upgrading, metadata)  # what `newsletter db upgrade` runs
    upgrading.dispose()
    engine = connect(database_url)
    assert "next_attempt_at" in {c["name"] for c in inspect(engine).get_columns("deliveries")}
    assert "ai_summary" in {c["name"] for c in inspect(engine).get_columns("papers")}
    engine.dispose()
