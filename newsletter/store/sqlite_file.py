"""A SQLite database is a file, and a file can be deleted or replaced under a running process.

SQLite goes on writing to a deleted file's inode without a word, so a run whose database was
removed would report success while its ledger vanished, and the next run, finding a new empty
database, would send everybody the same edition again. ``watch`` makes every transaction check
first that the path still names the file the engine opened; ``require`` refuses to make a new
database where one is expected (a helper process of a running `send`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from newsletter.errors import ConfigError, NewsletterError


class DatabaseGone(NewsletterError):
    """The database file was deleted or replaced while this process was using it."""


def database_file(engine: Engine) -> Path | None:
    """The file of a SQLite database; None for an in-memory one or another database."""
    name = engine.url.database if engine.dialect.name == "sqlite" else None
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name).absolute()


def require(url_file: Path | None) -> None:
    if url_file is not None and not url_file.exists():
        raise ConfigError(f"the database file {url_file} does not exist: it was deleted or "
                          "moved while `send` ran; restore it from a backup before sending "
                          "again (a new one would send every digest again)")


def watch(engine: Engine) -> None:
    """Check, at the start of every transaction, that the database file is still the one the
    first connection opened (same device and inode)."""
    path = database_file(engine)
    if path is None:
        return
    opened: list[tuple[int, int]] = []

    def remember(_dbapi_connection: Any, _record: Any) -> None:
        if not opened:
            opened.append(_identity(path) or (0, 0))

    def check(_connection: Any) -> None:
        if opened and _identity(path) != opened[0]:
            raise DatabaseGone(
                f"the database file {path} was deleted or replaced while this process was "
                "using it: what it recorded since is lost, and a new file would send every "
                "digest again. Restore the file from a backup (or find what removed it) "
                "before running again.")

    event.listen(engine, "connect", remember)
    event.listen(engine, "begin", check)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino
