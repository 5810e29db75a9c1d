"""How a database is opened and used: the engine (SQLite pragmas, PostgreSQL pre-ping), the
schema check on open, retrying while the database is unreachable, UTC times, insert-ignore.
The tables themselves are in ``schema.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time as time_module
from datetime import UTC, datetime
from typing import Any, Callable, Sequence, TypeVar

from sqlalchemy import Engine, MetaData, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError
from sqlalchemy.sql.dml import Insert

from newsletter.store import sqlite_file
from newsletter.store.migrate import ensure_current
from newsletter.store.schema import metadata

RECONNECT_PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)  # two minutes in all
SQLITE_BUSY_SECONDS = 10  # how long a statement waits for another process's write lock
log = logging.getLogger("newsletter")
T = TypeVar("T")


async def patiently(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, tried again after growing pauses while the database cannot be reached
    (a restart, a dropped connection): a waiting worker outlives a PostgreSQL restart instead
    of dying with it. Other errors, and the last failure, are raised."""
    for pause in RECONNECT_PAUSES:
        try:
            return call(*args)
        except (OperationalError, InterfaceError) as exc:
            reason = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("database unreachable (%s); trying again in %gs", reason, pause)
            await asyncio.sleep(pause)
    return call(*args)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def connect(url: str, *, create: bool = True) -> Engine:
    """Open the database at the newest schema: a new database is created there (one query
    when it already is; ``create=False``: a missing SQLite file is an error instead); one at
    an older schema raises ``SchemaMismatch``, which names ``newsletter db upgrade``."""
    engine = open_engine(url)
    if not create:
        sqlite_file.require(sqlite_file.database_file(engine))
    sqlite_file.watch(engine)
    try:
        ensure_current(engine, metadata)
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_engine(url: str) -> Engine:
    """The engine alone, schema unchecked: for the migrations (``migrate.py``)."""
    # A server's connection can die while it sits in the pool (a restart, an idle timeout, a
    # reset): test it when it is taken out, and connect afresh, rather than fail the caller.
    engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def create_tables(engine: Engine, tables: MetaData) -> None:
    """``create_all`` for tables kept outside the migrations (APScheduler's job table), safe
    when several processes start at the same moment: a process that loses the race for one
    table looks again, past the tables made meanwhile."""
    for attempt in range(20):
        try:
            tables.create_all(engine)
            return
        except DatabaseError:
            if attempt == 19:
                raise
            time_module.sleep(0.05)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # busy_timeout waits instead of failing, from the first statement on: switching a new
    # file to WAL needs the lock another process may hold while it creates the tables.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    # WAL lets `status` read while `send` writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL survives any process crash (kill -9 included); only a power cut or
    # OS crash can undo the last commits. FULL costs an fsync per ledger write.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def insert_ignore(engine: Engine, table: Table, key: Sequence[str]) -> Insert:
    """INSERT that skips rows clashing on ``key`` (any other clash still raises)."""
    make = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert
    return make(table).on_conflict_do_nothing(index_elements=list(key))
