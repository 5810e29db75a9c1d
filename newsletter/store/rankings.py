"""Topic rankings shared by the worker processes of a run (``relevance/shared.py``): a cache
keyed by the digest of everything a ranking depends on and by the understood query."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import Engine, delete, select

from newsletter.store.engine import insert_ignore
from newsletter.store.schema import topic_rankings

_IN_LIST = 500  # bounded IN lists


def load_rankings(engine: Engine, catalog: str, queries: Collection[str]) -> dict[str, str]:
    """query -> the stored ranking (JSON) of those ``queries`` ranked on ``catalog``."""
    wanted = list(queries)
    found: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), _IN_LIST):
            rows = conn.execute(select(topic_rankings.c.query, topic_rankings.c.hits).where(
                topic_rankings.c.catalog == catalog,
                topic_rankings.c.query.in_(wanted[start:start + _IN_LIST])))
            found.update((query, hits) for query, hits in rows)
    return found


def save_rankings(engine: Engine, catalog: str, rankings: Mapping[str, str],
                  now: datetime) -> None:
    """Keep these rankings; one another process stored first stays (they are the same)."""
    if not rankings:
        return
    with engine.begin() as conn:
        conn.execute(insert_ignore(engine, topic_rankings, ("catalog", "query")), [
            {"catalog": catalog, "query": query, "hits": hits, "made_at": now}
            for query, hits in rankings.items()])


def forget_rankings(engine: Engine, before: datetime) -> int:
    """Drop rankings made before ``before`` (yesterday's catalog): how many."""
    with engine.begin() as conn:
        return conn.execute(delete(topic_rankings).where(
            topic_rankings.c.made_at < before)).rowcount
