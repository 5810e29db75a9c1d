"""What the migration tests share: databases as older versions left them (full of rows), what
is in them, and copies of the migrations to add a test migration to."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
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

from newsletter.store import migrate
from newsletter.store.schema import metadata

# Values a real row would hold where the code parses them; every other column gets one made
# from its type.
REAL = {"email": "reader{k}@example.org", "frequency": "daily", "send_time": "08:00",
        "timezone": "Europe/Berlin", "status": "active", "state": "sent", "topics": ["GNN"]}


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


def rows(engine: Engine, schema: MetaData) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of ``schema``, in key order, as the database holds it."""
    with engine.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(
            select(table).order_by(*table.primary_key.columns))]
            for table in schema.sorted_tables}


def kept(schema: MetaData) -> MetaData:
    """The old tables the migrations keep: 0006 drops ``signups`` (pending sign-ups whose links
    were of the old scheme, which no longer confirms)."""
    tables = MetaData()
    for table in schema.sorted_tables:
        if table.name != "signups":
            table.to_metadata(tables)
    return tables


def expected_after(before: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``kept`` tables as it was; ``meta`` also says until when the unsubscribe
    links of the old scheme keep working (0006, when there were subscribers)."""
    after = {name: found for name, found in before.items() if name != "signups"}
    if before.get("subscribers"):
        after["meta"] = sorted([*before["meta"], ("legacy_unsubscribe_until", ANY)],
                               key=lambda row: row[0])
    return after


def differences(engine: Engine) -> list[Any]:
    """What alembic's autogenerate finds between the database and newsletter/store/schema.py."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": migrate.include_name})
        return compare_metadata(context, metadata)


def revision(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(text("SELECT version_num FROM alembic_version")))


def copy_of_the_migrations(tmp_path: Path) -> Path:
    scripts = tmp_path / "migrations"
    for path in [*migrate.SCRIPTS.glob("*.py"), *migrate.SCRIPTS.glob("*.mako"),
                 *migrate.SCRIPTS.glob("versions/0*.py")]:
        target = scripts / path.relative_to(migrate.SCRIPTS)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    return scripts


def add_migration(scripts: Path, body: str) -> str:
    """The next migration after the newest, in a copy of the migrations, ``body`` its
    upgrade(); its revision."""
    newest = int(migrate.head())
    revision, down = f"{newest + 1:04d}", f"{newest:04d}"
    source = ('"""A test migration."""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
              f'revision = "{revision}"\ndown_revision = "{down}"\n\n\ndef upgrade():\n')
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    (scripts / "versions" / f"{revision}_test.py").write_text(source + body + "\n")
    return revision


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
