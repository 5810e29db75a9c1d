"""Schema migrations: a database made by an older version upgrades with every row kept, ends
equal to the models, and the commands refuse to start on it until it has been upgraded."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from migration_checks import differences, expected_after, kept, revision, rows
from old_schemas import schema_7704e07, schema_cd5211a
from sqlalchemy import Engine, MetaData, text
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.store import migrate
from newsletter.store.catalog import count_papers
from newsletter.store.engine import connect, open_engine
from newsletter.store.schema import metadata
from newsletter.store.subscribers import load_subscribers

runner = CliRunner()
OLD_SCHEMAS: dict[str, Callable[[], MetaData]] = {
    "cd5211a": schema_cd5211a, "7704e07": schema_7704e07}


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_SEMANTIC":
            monkeypatch.delenv(name)
    return {"NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
            "NEWSLETTER_SECRET_KEY": "test-secret-for-links"}


@pytest.mark.parametrize("made_by", list(OLD_SCHEMAS))
def test_db_upgrade_keeps_every_row_of_a_database_made_before_migrations(
        made_by: str, old_engine: Callable[[MetaData], Engine], cli_env: dict[str, str]) -> None:
    schema = OLD_SCHEMAS[made_by]()
    engine = old_engine(schema)
    before = rows(engine, schema)
    assert all(len(rows) == 2 for rows in before.values())

    result = runner.invoke(app, ["db", "upgrade"], env=cli_env)

    assert result.exit_code == 0, result.output
    assert f"to {migrate.head()}" in result.output
    assert rows(engine, kept(schema)) == expected_after(before)
    assert revision(engine) == [migrate.head()]
    assert differences(engine) == []
    upgraded = connect(cli_env["NEWSLETTER_DATABASE_URL"])  # the code reads the old rows
    assert [s.email for s in load_subscribers(upgraded, statuses=None)] == [
        "reader1@example.org", "reader2@example.org"]
    assert count_papers(upgraded) == 2
    upgraded.dispose()


def test_db_upgrade_makes_an_empty_database_equal_to_the_models(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env=cli_env)

    assert result.exit_code == 0, result.output
    engine = open_engine(cli_env["NEWSLETTER_DATABASE_URL"])
    assert revision(engine) == [migrate.head()]
    assert differences(engine) == []
    engine.dispose()


def test_a_new_database_is_opened_at_the_newest_schema(database_url: str) -> None:
    engine = connect(database_url)

    assert revision(engine) == [migrate.head()]
    assert differences(engine) == []
    engine.dispose()
    again = connect(database_url)  # and opened again as it is
    assert revision(again) == [migrate.head()]
    again.dispose()


def test_the_newest_revision_is_the_one_alembic_finds() -> None:
    scripts = ScriptDirectory(str(migrate.SCRIPTS))
    assert migrate.head() == scripts.get_current_head()
    for script in scripts.walk_revisions():  # head() relies on files named by their revision
        assert Path(script.path).name.startswith(f"{script.revision}_")


@pytest.mark.parametrize("command", [["send"], ["run"], ["serve"], ["worker", "--drain"]])
def test_commands_refuse_a_database_made_before_migrations_naming_db_upgrade(
        command: list[str], old_engine: Callable[[MetaData], Engine],
        cli_env: dict[str, str]) -> None:
    engine = old_engine(schema_cd5211a())
    before = rows(engine, schema_cd5211a())

    result = runner.invoke(app, command, env=cli_env)

    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert "before migrations: run `newsletter db upgrade`" in result.output
    assert rows(engine, schema_cd5211a()) == before  # nothing synced, sent or created
    with engine.connect() as conn:
        assert "alembic_version" not in engine.dialect.get_table_names(conn)


def test_an_older_revision_is_refused_and_db_status_lists_what_upgrade_runs(
        database_url: str, cli_env: dict[str, str]) -> None:
    engine = open_engine(database_url)
    migrate.upgrade(engine, metadata, "0002")

    with pytest.raises(migrate.SchemaMismatch, match="at schema 0002, older than this version's"):
        connect(database_url)
    status = runner.invoke(app, ["db", "status"], env=cli_env)
    assert status.exit_code == 1, status.output
    after = int(migrate.head()) - 2  # 0003, 0004, ... up to the newest
    assert f"schema 0002; `newsletter db upgrade` runs {after} migrations" in status.output
    assert "\n  0003  Self-service" in status.output and "\n  0004  Deliveries" in status.output

    upgrade = runner.invoke(app, ["db", "upgrade"], env=cli_env)
    assert upgrade.exit_code == 0, upgrade.output
    assert f"upgraded from schema 0002 to {migrate.head()}" in upgrade.output
    assert differences(engine) == []
    status = runner.invoke(app, ["db", "status"], env=cli_env)
    assert status.exit_code == 0 and f"schema {migrate.head()}, up to date" in status.output
    engine.dispose()


def test_a_revision_from_a_newer_version_is_refused_by_connect_and_upgrade(
        database_url: str) -> None:
    connect(database_url).dispose()
    engine = open_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))

    with pytest.raises(migrate.SchemaMismatch, match="at schema 9999, which this version"):
        connect(database_url)
    with pytest.raises(migrate.SchemaMismatch, match="install that one"):
        migrate.upgrade(engine, metadata)
    assert revision(engine) == ["9999"]
    engine.dispose()


def _open_at(url: str, start: Any, results: Any) -> None:
    start.wait()
    try:
        connect(url).dispose()
        results.put("ok")
    except Exception as exc:  # reported to the test, which names it
        results.put(f"{exc.__class__.__name__}: {exc}")


def test_processes_opening_a_new_database_at_the_same_moment_all_get_it(
        database_url: str) -> None:
    context = multiprocessing.get_context("fork")  # the imports are done: they start together
    start, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_open_at, args=(database_url, start, results))
                 for _ in range(4)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)

    assert outcomes == ["ok"] * 4
    engine = open_engine(database_url)
    assert revision(engine) == [migrate.head()]
    assert differences(engine) == []
    engine.dispose()


def test_0005_forgets_the_publication_dates_saved_pages_gave_and_ingest_restores_stated_ones(
        database_url: str) -> None:
    from datetime import UTC, date, datetime

    from paths import SEEDS

    from newsletter.catalog.ingest import ingest
    from newsletter.store.catalog import load_papers

    engine = open_engine(database_url)
    migrate.upgrade(engine, metadata, "0004")
    now = datetime(2026, 11, 23, tzinfo=UTC)
    stored = [  # as the old parser stored them: a page's "Mar 11" became 11 Mar 2026
        ("efficient-global", "Efficient Global Optimization of Two-layer ReLU Networks: "
         "Quadratic-time Algorithms and Adversarial Training", ["seeds/000_573b65b225b1358c.txt"],
         date(2026, 3, 11)),
        ("a-study", "A Study of Bayesian Neural Network Surrogates for Bayesian Optimization",
         ["seeds/002_9035318331f7238d.txt"], date(2026, 10, 30)),
        ("2403.01234", "Seen on a page and in the HF API",
         ["seeds/000_573b65b225b1358c.txt", "https://huggingface.co/api/daily_papers"],
         date(2024, 3, 2)),
    ]
    with engine.begin() as conn:
        for pid, title, sources, published in stored:
            conn.execute(text(
                "INSERT INTO papers (id, title, title_key, abstract, authors, links, sources, "
                "published, first_seen_at, updated_at) VALUES (:id, :title, :key, '', '[]', "
                "'[]', :sources, :published, :now, :now)"),
                {"id": pid, "title": title, "key": pid, "sources": json.dumps(sources),
                 "published": published, "now": now})
    migrate.upgrade(engine, metadata)
    engine.dispose()

    engine = connect(database_url)
    published = {p.id: p.published for p in load_papers(engine)}
    assert published == {"efficient-global": None, "a-study": None,
                         "2403.01234": date(2024, 3, 2)}  # seen elsewhere too: kept
    ingest(engine, [SEEDS / "002_9035318331f7238d.txt"], now)
    paper = next(p for p in load_papers(engine) if p.id == "a-study")
    assert paper.published == date(2023, 5, 31)  # the entry's own "May 31, 2023"
    assert (paper.listed_at, paper.listed_year_inferred) == (datetime(2026, 10, 30, tzinfo=UTC),
                                                             True)
    engine.dispose()
