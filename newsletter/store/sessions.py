"""The operator's sessions (/admin): a row per signed-in browser, found by its cookie's hash."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select

from newsletter.store.engine import as_utc, utcnow
from newsletter.store.schema import admin_sessions


def open_session(engine: Engine, token_hash: str, password_hash: str, lasts: timedelta,
                 now: datetime | None = None) -> None:
    now = now or utcnow()
    with engine.begin() as conn:
        conn.execute(admin_sessions.delete().where(admin_sessions.c.expires_at < now))
        conn.execute(insert(admin_sessions).values(token_hash=token_hash,
                                                   password_hash=password_hash,
                                                   created_at=now, expires_at=now + lasts))


def session_valid(engine: Engine, token_hash: str, password_hash: str,
                  now: datetime | None = None) -> bool:
    """True while the session exists, has not expired and was opened with today's password."""
    with engine.connect() as conn:
        row = conn.execute(select(admin_sessions.c.password_hash, admin_sessions.c.expires_at)
                           .where(admin_sessions.c.token_hash == token_hash)).first()
    if row is None or as_utc(row.expires_at) <= (now or utcnow()):  # type: ignore[operator]
        return False
    return bool(row.password_hash == password_hash)


def close_session(engine: Engine, token_hash: str) -> None:
    with engine.begin() as conn:
        conn.execute(admin_sessions.delete().where(admin_sessions.c.token_hash == token_hash))
