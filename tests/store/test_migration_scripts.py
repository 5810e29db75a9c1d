"""Writing migrations: the next script from autogenerate, and the guarantees a new one gets
from ``migrate.upgrade`` (SQLite table rebuilds keep referenced rows; a failure undoes all)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from migration_checks import (
    add_migration,
    copy_of_the_migrations,
    differences,
    expected_after,
    kept,
    revision,
    rows,
)
from old_schemas import schema_7704e07, schema_cd5211a
from sqlalchemy import Column, Engine, MetaData, String
from sqlalchemy.exc import IntegrityError

from newsletter.errors import NewsletterError
from newsletter.store import migrate
from newsletter.store.engine import open_engine
from newsletter.store.schema import metadata


def test_new_revision_writes_the_migration_for_a_column_added_to_the_models(
        tmp_path: Path) -> None:
    scripts = copy_of_the_migrations(tmp_path)
    models = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(models)
    models.tables["subscribers"].append_column(Column("locale", String(16)))

    written = migrate.new_revision("subscribers choose a locale", models, scripts)

    newest = int(migrate.head())  # the next one is numbered after it
    assert written.name == f"{newest + 1:04d}_subscribers_choose_a_locale.py"
    source = written.read_text()
    assert f'down_revision = "{newest:04d}"' in source
    assert "batch_op.add_column(sa.Column('locale', sa.String(length=16)" in source
    assert source.count("add_column") == 1 and "drop" not in source
    compile(source, str(written), "exec")


def test_a_migration_that_rebuilds_a_referenced_table_keeps_every_row(
        old_engine: Callable[[MetaData], Engine], database_url: str, tmp_path: Path) -> None:
    """On SQLite, altering a table means copying it and dropping the old one, which foreign
    keys forbid while other rows refer to it (alembic's batch mode, autogenerate's output)."""
    scripts = copy_of_the_migrations(tmp_path)
    added = add_migration(scripts, """
        for table, column, width in (("subscribers", "name", 200), ("deliveries", "edition", 16)):
            for old, new in ((width, width * 2), (width * 2, width)):
                with op.batch_alter_table(table) as batch:
                    batch.alter_column(column, existing_type=sa.String(old),
                                       type_=sa.String(new), existing_nullable=False)
    """)
    schema = schema_7704e07()
    engine = old_engine(schema)
    before = rows(engine, schema)

    upgrading = open_engine(database_url)  # foreign keys enforced, as in `db upgrade`
    migrate.upgrade(upgrading, metadata, directory=scripts)
    upgrading.dispose()

    assert revision(engine) == [added]
    assert rows(engine, kept(schema)) == expected_after(before)
    assert differences(engine) == []


def test_a_failing_migration_changes_nothing(
        old_engine: Callable[[MetaData], Engine], database_url: str, tmp_path: Path) -> None:
    """All migrations run in one transaction: one that breaks the data (here: orphans every
    delivery; PostgreSQL refuses at once, SQLite at the check before commit) undoes them all."""
    scripts = copy_of_the_migrations(tmp_path)
    add_migration(scripts, """
        op.execute("DELETE FROM subscribers")
    """)
    schema = schema_cd5211a()
    engine = old_engine(schema)
    before = rows(engine, schema)
    upgrading = open_engine(database_url)

    with pytest.raises((NewsletterError, IntegrityError), match="subscribers|foreign key"):
        migrate.upgrade(upgrading, metadata, directory=scripts)

    upgrading.dispose()
    assert rows(engine, schema) == before
    with engine.connect() as conn:  # not even the earlier migrations' tables and columns remain
        assert sorted(engine.dialect.get_table_names(conn)) == sorted(schema.tables)
        assert len(engine.dialect.get_columns(conn, "papers")) == len(schema.tables["papers"].c)
