"""The schema's revision, kept by Alembic (configured here: no alembic.ini).

``connect`` checks it with one query. A database with none of our tables is created at the
newest revision; one at an older revision (or made before migrations) is refused until
``newsletter db upgrade`` (``upgrade`` here) runs the scripts in ``migrations/versions``.

Several processes may open a new database at the same moment: the first to take the schema
lock (SQLite's write lock by ``BEGIN IMMEDIATE``; a PostgreSQL advisory lock) creates it in
one transaction, the others wait for it and find it made.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from newsletter.errors import NewsletterError

SCRIPTS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# Not ours, though in the same database: APScheduler's job store (dispatch/schedule.py) makes
# and changes its own table, so the migrations leave it alone.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})
UPGRADE = "run `newsletter db upgrade` (back up the database first)"
_LOCK_KEY = 0x6E657773_6C657474  # PostgreSQL advisory lock held while the schema changes


class SchemaMismatch(NewsletterError):
    """The database's schema is not the one this version of newsletter works with."""


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # None: no revision recorded (empty, or made before migrations)
    has_tables: bool  # any of our tables exist
    head: str  # the newest revision this version knows
    pending: list[tuple[str, str]]  # (revision, what it does) that `upgrade` would run, in order


def include_name(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
    """What migrations and autogenerate compare: everything but the foreign tables."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def ensure_current(engine: Engine, tables: MetaData) -> None:
    """Return if the database is at the newest revision (one query); create it there if it has
    none of ``tables``; otherwise raise ``SchemaMismatch`` saying what to run."""
    if _stored_revision(engine) == head():
        return
    with exclusive(engine) as conn:
        revision, has_tables = _look(conn, tables)
        if revision is None and not has_tables:
            tables.create_all(conn)
            _stamp_head(conn)
            return
    if revision != head():
        raise SchemaMismatch(_verdict(engine, revision))


def upgrade(engine: Engine, tables: MetaData, revision: str = "head",
            directory: Path = SCRIPTS) -> str | None:
    """Run every migration the database lacks (up to ``revision``), in one transaction;
    returns the revision it was at (None: empty, or made before migrations). ``newsletter db
    upgrade`` calls this."""
    from alembic import command

    with exclusive(engine, rebuilding=True) as conn:
        before, _ = _look(conn, tables)
        if before is not None and before not in _known():
            raise SchemaMismatch(_verdict(engine, before))
        command.upgrade(_config(conn, tables, directory), revision)
    return before


def state(engine: Engine, tables: MetaData) -> SchemaState:
    with engine.connect() as conn:
        revision, has_tables = _look(conn, tables)
    scripts = _scripts()
    lower = revision if revision in _known() else "base"
    pending = [] if revision is not None and lower == "base" else [
        (script.revision, " ".join((script.doc or "").split()))
        for script in reversed(list(scripts.iterate_revisions("heads", lower)))]
    return SchemaState(revision, has_tables, head(), pending)


@functools.cache
def head() -> str:
    """The newest revision. Migrations are numbered (0001, 0002, ...) and their files start with
    that number, so the largest one is the head, found without loading Alembic (a test checks
    that Alembic agrees)."""
    return max(path.name[:4] for path in (SCRIPTS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


@contextmanager
def exclusive(engine: Engine, rebuilding: bool = False) -> Iterator[Connection]:
    """One transaction holding the schema lock, committed when the block ends without error.

    ``rebuilding``: SQLite alters a table by copying it and dropping the old one, and with
    foreign keys enforced, dropping a table others refer to fails; so they are off in the
    transaction and checked before it commits (SQLite's own procedure for schema changes).
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite and rebuilding:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
        if sqlite:
            # The driver leaves DDL outside transactions; this makes it one, and takes the
            # write lock now (waiting up to busy_timeout), not at the first write.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        try:
            yield conn
            if sqlite and rebuilding:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                if broken is not None:
                    raise NewsletterError(f"{where(engine)}: the migration left a row of "
                                         f"{broken[0]} referring to a missing {broken[2]} row; "
                                         "nothing was changed")
            conn.commit()
        finally:
            if sqlite and rebuilding:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def new_revision(message: str, tables: MetaData, directory: Path = SCRIPTS) -> Path:
    """Write the next migration script into ``directory``/versions: what autogenerate finds
    between ``tables`` and a scratch SQLite database made by the existing migrations. Read it
    and edit it before committing (a renamed column comes out as a drop and an add)."""
    from alembic import command
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(directory))
    number = int(scripts.get_current_head() or "0") + 1
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        try:
            with exclusive(engine) as conn:
                config = _config(conn, tables, directory)
                command.upgrade(config, "head")
                script = command.revision(config, message, autogenerate=True,
                                          rev_id=f"{number:04d}")
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def _stored_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    except DBAPIError:  # no version table (yet): the slow path looks closer, under the lock
        return None


def _look(conn: Connection, tables: MetaData) -> tuple[str | None, bool]:
    names = set(inspect(conn).get_table_names())
    revision = None
    if VERSION_TABLE in names:
        revision = conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return revision, bool(names & set(tables.tables))


def where(engine: Engine) -> str:
    """The database as the messages name it: the file for SQLite, else the URL sans password."""
    if engine.dialect.name == "sqlite" and engine.url.database:
        return engine.url.database
    return engine.url.render_as_string(hide_password=True)


def _verdict(engine: Engine, revision: str | None) -> str:
    name = where(engine)
    if revision is None:
        return f"{name} was made by a version of newsletter from before migrations: {UPGRADE}"
    if revision in _known():
        return f"{name} is at schema {revision}, older than this version's {head()}: {UPGRADE}"
    return (f"{name} is at schema {revision}, which this version of newsletter does not know "
            f"(newest: {head()}); it was upgraded by a newer version: install that one")


def _stamp_head(conn: Connection) -> None:
    from alembic.runtime.migration import MigrationContext

    MigrationContext.configure(conn).stamp(_scripts(), "head")


def _config(conn: Connection, tables: MetaData, directory: Path = SCRIPTS) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(directory))
    config.attributes.update(connection=conn, metadata=tables)
    return config


@functools.cache
def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(SCRIPTS))


def _known() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}
