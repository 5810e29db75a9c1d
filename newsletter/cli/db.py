"""`db status` and `db upgrade`: the database's schema revision (newsletter/store/migrate.py)."""

from __future__ import annotations

import typer
from sqlalchemy import Engine

from newsletter.cli.common import friendly, say
from newsletter.settings import Settings
from newsletter.store import migrate
from newsletter.store.engine import open_engine
from newsletter.store.schema import metadata

db_app = typer.Typer(help="The database's schema: where it stands, and upgrading it after "
                          "installing a newer version of newsletter.", no_args_is_help=True)


@db_app.command("status")
@friendly
def db_status() -> None:
    """Show the database's schema revision and the migrations `db upgrade` would run.

    Exits 1 when an existing database needs them: the other commands refuse to start until
    then.
    """
    engine, where = _open()
    try:
        state = migrate.state(engine, metadata)
    finally:
        engine.dispose()
    if state.revision == state.head:
        _say(f"{where}: schema {state.head}, up to date.")
    elif state.revision is None and not state.has_tables:
        _say(f"{where}: empty; the first command creates it at schema {state.head}.")
    elif not state.pending:
        _say(f"{where}: schema {state.revision}, newer than this version's {state.head}: "
                  "install the newer version of newsletter.")
        raise typer.Exit(1)
    else:
        at = "made before migrations" if state.revision is None else f"schema {state.revision}"
        _say(f"{where}: {at}; `newsletter db upgrade` runs {len(state.pending)} "
                  f"migrations to {state.head}:")
        _list(state.pending)
        raise typer.Exit(1)


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Bring the database (NEWSLETTER_DATABASE_URL) to this version's schema: run the
    migrations it lacks, all in one transaction, keeping every row.

    Back it up first (SQLite: copy the file while nothing runs; PostgreSQL: pg_dump), and stop
    the newsletter processes using it: new ones refuse to start on an older schema, but running
    ones do not look again. A database already up to date is left as it is.
    """
    engine, where = _open()
    try:
        state = migrate.state(engine, metadata)
        migrate.upgrade(engine, metadata)
    finally:
        engine.dispose()
    if state.revision == state.head:
        _say(f"{where}: schema {state.head}, already up to date.")
        return
    if state.revision is None and not state.has_tables:
        _say(f"{where}: created at schema {state.head}.")
        return
    at = "no schema revision (made before migrations)" if state.revision is None \
        else f"schema {state.revision}"
    _say(f"{where}: upgraded from {at} to {state.head}:")
    _list(state.pending)


def _say(line: str) -> None:
    say(line, wrap=False)  # one line each, however long the path


def _list(pending: list[tuple[str, str]]) -> None:
    for revision, what in pending:
        _say(f"  {revision}  {what}")


def _open() -> tuple[Engine, str]:
    engine = open_engine(Settings().database_url)
    return engine, migrate.where(engine)
