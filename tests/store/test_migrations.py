"""Schema migrations: a database made by an older version upgrades with every row kept, ends
equal to the models, and the commands refuse to start on it until it has been upgraded."""

from __future__ import annotations

import multiprocessing
import os
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from old_schemas import schema_7704e07, schema_cd5211a
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.errors import NewsletterError
from newsletter.store import migrate
from newsletter.store.catalog import count_papers
from newsletter.store.schema import connect, metadata, open_engine
from newsletter.store.subscribers import load_subscribers

runner = CliRunner()
OLD_SCHEMAS: dict[str, Callable[[], MetaData]] = {
    "cd5211a": schema_cd5211a, "7704e07": schema_7704e07}

# Values a real row would hold where the code parses them; every other column gets one made
# from its type.
REAL = {"email": "reader{k}@example.org", "frequency": "daily", "send_time": "08:00",
        "timezone": "Europe/Berlin", "status": "active", "state": "sent", "topics": ["GNN"]}


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(os.environ):
        if name.startswith("NEWSLETTER_") and name != "NEWSLETTER_SEMANTIC":
            monkeypatch.delenv(name)
    return {"NEWSLETTER_DATABASE_URL": database_url,
            "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
            "NEWSLETTER_SECRET_KEY": "test-secret"}


@pytest.fixture
def old_engine(database_url: str) -> Iterator[Callable[[MetaData], Engine]]:
    """``make(schema)``: the database as that version made it (its ``connect`` on an empty
    database was ``create_all``), with two rows in every table."""
    engines: list[Engine] = []

    def make(schema: MetaData) -> Engine:
        engine = create_engine(database_url)
        engines.append(engine)
        schema.create_all(engine)
        with engine.begin() as conn:
            for table in schema.sorted_tables:
                conn.execute(insert(table), [_row(table, k) for k in (1, 2)])
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def _row(table: Table, k: int) -> dict[str, Any]:
    return {column.name: _value(column, k) for column in table.columns}


def _value(column: Any, k: int) -> Any:
    if column.name in REAL:
        real = REAL[column.name]
        return real.format(k=k) if isinstance(real, str) else real
    kind = column.type
    if isinstance(kind, Integer):
        return k  # ids and the foreign keys to them alike: row k refers to row k
    if isinstance(kind, Boolean):
        return k == 1
    if isinstance(kind, DateTime):
        return datetime(2024, 5, k, 7, 30, tzinfo=UTC)
    if isinstance(kind, Date):
        return date(2024, 5, k)
    if isinstance(kind, JSON):
        return [f"{column.name} {k}", {"k": k}]
    if isinstance(kind, LargeBinary):
        return bytes([k, 0, 255])
    value = f"{k} {column.name} ü"
    return value[:kind.length] if isinstance(kind, String) and kind.length else value


def _rows(engine: Engine, schema: MetaData) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(
            select(table).order_by(*table.primary_key.columns))]
            for table in schema.sorted_tables}


def _differences(engine: Engine) -> list[Any]:
    """What alembic's autogenerate finds between the database and newsletter/store/schema.py."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": migrate.include_name})
        return compare_metadata(context, metadata)


def _revision(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(text("SELECT version_num FROM alembic_version")))


@pytest.mark.parametrize("made_by", list(OLD_SCHEMAS))
def test_db_upgrade_keeps_every_row_of_a_database_made_before_migrations(
        made_by: str, old_engine: Callable[[MetaData], Engine], cli_env: dict[str, str]) -> None:
    schema = OLD_SCHEMAS[made_by]()
    engine = old_engine(schema)
    before = _rows(engine, schema)
    assert all(len(rows) == 2 for rows in before.values())

    result = runner.invoke(app, ["db", "upgrade"], env=cli_env)

    assert result.exit_code == 0, result.output
    assert f"to {migrate.head()}" in result.output
    assert _rows(engine, schema) == before
    assert _revision(engine) == [migrate.head()]
    assert _differences(engine) == []
    upgraded = connect(cli_env["NEWSLETTER_DATABASE_URL"])  # the code reads the old rows
    assert [s.email for s in load_subscribers(upgraded, statuses=None)] == [
        "reader1@example.org", "reader2@example.org"]
    assert count_papers(upgraded) == 2
    upgraded.dispose()


def test_db_upgrade_makes_an_empty_database_equal_to_the_models(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env=cli_env)

    assert result.exit_code == 0, result.output
    engine = open_engine(cli_env["NEWSLETTER_DATABASE_URL"])
    assert _revision(engine) == [migrate.head()]
    assert _differences(engine) == []
    engine.dispose()


def test_a_new_database_is_opened_at_the_newest_schema(database_url: str) -> None:
    engine = connect(database_url)

    assert _revision(engine) == [migrate.head()]
    assert _differences(engine) == []
    engine.dispose()
    again = connect(database_url)  # and opened again as it is
    assert _revision(again) == [migrate.head()]
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
    before = _rows(engine, schema_cd5211a())

    result = runner.invoke(app, command, env=cli_env)

    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert "before migrations: run `newsletter db upgrade`" in result.output
    assert _rows(engine, schema_cd5211a()) == before  # nothing synced, sent or created
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
    assert _differences(engine) == []
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
    assert _revision(engine) == ["9999"]
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
    assert _revision(engine) == [migrate.head()]
    assert _differences(engine) == []
    engine.dispose()


def test_new_revision_writes_the_migration_for_a_column_added_to_the_models(
        tmp_path: Path) -> None:
    scripts = _copy_of_the_migrations(tmp_path)
    models = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(models)
    models.tables["subscribers"].append_column(Column("locale", String(16)))

    written = migrate.new_revision("subscribers choose a locale", models, scripts)

    assert written.name == "0005_subscribers_choose_a_locale.py"
    source = written.read_text()
    assert 'down_revision = "0004"' in source
    assert "batch_op.add_column(sa.Column('locale', sa.String(length=16)" in source
    assert source.count("add_column") == 1 and "drop" not in source
    compile(source, str(written), "exec")


def test_a_migration_that_rebuilds_a_referenced_table_keeps_every_row(
        old_engine: Callable[[MetaData], Engine], database_url: str, tmp_path: Path) -> None:
    """On SQLite, altering a table means copying it and dropping the old one, which foreign
    keys forbid while other rows refer to it (alembic's batch mode, autogenerate's output)."""
    scripts = _copy_of_the_migrations(tmp_path)
    _add_migration(scripts, """
        for table, column, width in (("subscribers", "name", 200), ("deliveries", "edition", 16)):
            for old, new in ((width, width * 2), (width * 2, width)):
                with op.batch_alter_table(table) as batch:
                    batch.alter_column(column, existing_type=sa.String(old),
                                       type_=sa.String(new), existing_nullable=False)
    """)
    schema = schema_7704e07()
    engine = old_engine(schema)
    before = _rows(engine, schema)

    upgrading = open_engine(database_url)  # foreign keys enforced, as in `db upgrade`
    migrate.upgrade(upgrading, metadata, directory=scripts)
    upgrading.dispose()

    assert _revision(engine) == ["0005"]
    assert _rows(engine, schema) == before
    assert _differences(engine) == []


def test_a_failing_migration_changes_nothing(
        old_engine: Callable[[MetaData], Engine], database_url: str, tmp_path: Path) -> None:
    """All migrations run in one transaction: one that breaks the data (here: orphans every
    delivery; PostgreSQL refuses at once, SQLite at the check before commit) undoes them all."""
    scripts = _copy_of_the_migrations(tmp_path)
    _add_migration(scripts, """
        op.execute("DELETE FROM subscribers")
    """)
    schema = schema_cd5211a()
    engine = old_engine(schema)
    before = _rows(engine, schema)
    upgrading = open_engine(database_url)

    with pytest.raises((NewsletterError, IntegrityError), match="subscribers|foreign key"):
        migrate.upgrade(upgrading, metadata, directory=scripts)

    upgrading.dispose()
    assert _rows(engine, schema) == before
    with engine.connect() as conn:  # not even 0001-0004's tables and columns remain
        assert sorted(engine.dialect.get_table_names(conn)) == sorted(schema.tables)
        assert len(engine.dialect.get_columns(conn, "papers")) == len(schema.tables["papers"].c)


def _add_migration(scripts: Path, body: str) -> None:
    """Migration 0005 in a copy of the migrations, ``body`` its upgrade()."""
    source = ('"""A test migration."""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
              'revision = "0005"\ndown_revision = "0004"\n\n\ndef upgrade():\n')
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    (scripts / "versions" / "0005_test.py").write_text(source + body + "\n")


def _copy_of_the_migrations(tmp_path: Path) -> Path:
    scripts = tmp_path / "migrations"
    for path in [*migrate.SCRIPTS.glob("*.py"), *migrate.SCRIPTS.glob("*.mako"),
                 *migrate.SCRIPTS.glob("versions/0*.py")]:
        target = scripts / path.relative_to(migrate.SCRIPTS)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return scripts
