"""Schema migrations: a database made by an older version upgrades with every row kept, ends
equal to the models, and the commands refuse to start on it until it has been upgraded."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from migration_checks import differences, revision, rows
from old_schemas import schema_7704e07, schema_cd5211a
from sqlalchemy import Engine, MetaData, text
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.store import migrate
from newsletter.store.catalog import count_papers
from newsletter.store.schema import connect, metadata, open_engine
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
            "NEWSLETTER_SECRET_KEY": "test-secret"}


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
    assert rows(engine, schema) == before
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
    assert "schema 0002; `newsletter db upgrade` runs 2 migrations" in status.output
    assert "\n  0003  Self-service" in status.output and "\n  0004  Deliveries" in status.output

    upgrade = runner.invoke(app, ["db", "upgrade"], env=cli_env)
    assert upgrade.exit_code == 0, upgrade.output
    assert "upgraded from schema 0002 to 0004" in upgrade.output
    assert differences(engine) == []
    status = runner.invoke(app, ["db", "status"], env=cli_env)
    assert status.exit_code == 0 and "schema 0004, up to date" in status.output
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
