from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from paths import ROOT
from sqlalchemy import update

from newsletter.catalog import ingest
from newsletter.dispatch.deliver import Pipeline
from newsletter.models import Subscriber
from newsletter.settings import Settings
from newsletter.store import schema
from newsletter.store.catalog import load_papers
from newsletter.store.schema import connect, utcnow


def test_a_digest_picks_only_from_papers_first_seen_inside_the_window(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    engine = connect(url)
    now = utcnow()
    ingest.ingest(engine, [ROOT / "seeds"], now)
    old = [p.id for p in load_papers(engine) if "graph" in p.title.lower()]
    with engine.begin() as conn:
        conn.execute(update(schema.papers).where(schema.papers.c.id.in_(old))
                     .values(first_seen_at=now - timedelta(days=30)))
    settings = Settings(database_url=url, secret_key="s", window_days=14)
    reader = Subscriber(email="a@example.org", name="A", topics=("GNN", "PINNs"), id=1,
                        link_id="reader-link1", link_key="k")
    composed = Pipeline.build(engine, settings, now).compose(reader, set(), "2026-11-23")
    assert composed is not None
    assert not set(composed.digest.paper_ids) & set(old)
    wide = Settings(database_url=url, secret_key="s", window_days=60)
    composed = Pipeline.build(engine, wide, now).compose(reader, set(), "2026-11-23")
    assert composed is not None and set(composed.digest.paper_ids) & set(old)
