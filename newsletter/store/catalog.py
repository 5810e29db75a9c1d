"""Catalog queries: papers, the HTTP validators of fetched sources, reader clicks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Collection, Sequence

from sqlalchemy import Engine, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.models import Link, Paper
from newsletter.store.engine import as_utc, utcnow
from newsletter.store.schema import clicks, http_validators, papers


def _paper_row(paper: Paper, title_key: str, now: datetime) -> dict[str, Any]:
    return {
        "id": paper.id, "arxiv_id": paper.arxiv_id, "title": paper.title,
        "title_key": title_key, "abstract": paper.abstract, "authors": list(paper.authors),
        "author_count": paper.author_count, "published": paper.published, "url": paper.url,
        "links": [[link.kind, link.url] for link in paper.links], "upvotes": paper.upvotes,
        "comments": paper.comments, "sources": list(paper.sources),
        "ai_summary": paper.ai_summary, "keywords": list(paper.keywords),
        "github_stars": paper.github_stars, "clicks": paper.clicks,
        "listed_at": paper.listed_at, "listed_year_inferred": paper.listed_year_inferred,
        "thumbnail": paper.thumbnail,
        "first_seen_at": paper.first_seen_at or now, "updated_at": now,
    }


def _paper(row: Any) -> Paper:
    return Paper(
        id=row.id, title=row.title, abstract=row.abstract, arxiv_id=row.arxiv_id,
        authors=tuple(row.authors), author_count=row.author_count, published=row.published,
        url=row.url, links=tuple(Link(kind, url) for kind, url in row.links),
        upvotes=row.upvotes, comments=row.comments, first_seen_at=as_utc(row.first_seen_at),
        sources=tuple(row.sources), ai_summary=row.ai_summary, keywords=tuple(row.keywords or ()),
        github_stars=row.github_stars, clicks=row.clicks, listed_at=as_utc(row.listed_at),
        listed_year_inferred=bool(row.listed_year_inferred), thumbnail=row.thumbnail,
    )


def load_papers(engine: Engine, since: datetime | None = None) -> list[Paper]:
    """The catalog (or the part first seen at or after ``since``), newest first."""
    query = select(papers).order_by(papers.c.first_seen_at.desc(), papers.c.id)
    if since is not None:
        query = query.where(papers.c.first_seen_at >= since)
    with engine.connect() as conn:
        return [_paper(row) for row in conn.execute(query)]


def count_papers(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(papers)) or 0


def save_papers(engine: Engine, new: Sequence[tuple[Paper, str]],
                changed: Sequence[tuple[Paper, str]], now: datetime | None = None,
                replaced: Sequence[str] = ()) -> None:
    """Insert ``new`` and overwrite ``changed`` papers, each given with its title key, in one
    transaction, deleting first the ``replaced`` rows (papers stored under their title slug
    earlier in the same ingest that have just learnt their arXiv id)."""
    now = now or utcnow()
    with engine.begin() as conn:
        if replaced:
            conn.execute(papers.delete().where(papers.c.id.in_(list(replaced))))
        if new:
            conn.execute(insert(papers), [_paper_row(p, key, now) for p, key in new])
        for paper, key in changed:
            row = _paper_row(paper, key, now)
            del row["first_seen_at"]
            # Clicks are counted by the web app while an ingest may run: never lower them; a
            # source's higher count (an export) wins, as for every engagement count.
            if paper.clicks is None:
                del row["clicks"]
            else:
                row["clicks"] = case((func.coalesce(papers.c.clicks, -1) < paper.clicks,
                                      paper.clicks), else_=papers.c.clicks)
            conn.execute(update(papers).where(papers.c.id == paper.id).values(**row))


# -- HTTP validators ----------------------------------------------------------------------


def load_validators(engine: Engine, url: str) -> tuple[str | None, str | None]:
    """(ETag, Last-Modified) the server sent with the last content we stored from ``url``."""
    query = select(http_validators.c.etag, http_validators.c.last_modified).where(
        http_validators.c.url == url)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return (row.etag, row.last_modified) if row else (None, None)


def save_validators(engine: Engine, rows: Sequence[tuple[str, str | None, str | None]],
                    now: datetime | None = None) -> None:
    """Remember (url, etag, last_modified) for each URL; call only once its papers are stored,
    or a 304 would later hide content that never reached the catalog."""
    now = now or utcnow()
    with engine.begin() as conn:
        for url, etag, last_modified in rows:
            # Delete + insert: a portable upsert (SQLite and PostgreSQL spell ON CONFLICT apart).
            conn.execute(http_validators.delete().where(http_validators.c.url == url))
            conn.execute(insert(http_validators).values(
                url=url, etag=etag, last_modified=last_modified, fetched_at=now))


def load_paper(engine: Engine, paper_id: str) -> Paper | None:
    with engine.connect() as conn:
        row = conn.execute(select(papers).where(papers.c.id == paper_id)).first()
    return _paper(row) if row else None


def load_papers_by_id(engine: Engine, paper_ids: Collection[str],
                      chunk: int = 500) -> list[Paper]:
    """The stored papers among ``paper_ids``, in id order; unknown ids are left out."""
    ids, found = sorted(set(paper_ids)), []
    with engine.connect() as conn:
        for start in range(0, len(ids), chunk):
            found.extend(_paper(row) for row in conn.execute(
                select(papers).where(papers.c.id.in_(ids[start:start + chunk]))
                .order_by(papers.c.id)))
    return found


def load_papers_like(engine: Engine, arxiv_ids: Collection[str], title_keys: Collection[str],
                     chunk: int = 500) -> list[Paper]:
    """The stored papers with one of ``arxiv_ids`` (as their arXiv id or their id) or one of
    the ``title_keys``: what a reader's library can match, without loading the catalog."""
    found: dict[str, Paper] = {}
    wanted = ((papers.c.arxiv_id, sorted(set(arxiv_ids))), (papers.c.id, sorted(set(arxiv_ids))),
              (papers.c.title_key, sorted({key[:400] for key in title_keys})))
    with engine.connect() as conn:
        for column, values in wanted:
            for start in range(0, len(values), chunk):
                for row in conn.execute(select(papers).where(
                        column.in_(values[start:start + chunk]))):
                    found.setdefault(row.id, _paper(row))
    return [found[pid] for pid in sorted(found)]


def record_click(engine: Engine, subscriber_id: int, paper_id: str,
                 now: datetime | None = None) -> bool:
    """Count a reader's click on a paper once; False when it was counted before (or the
    reader is unknown)."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(clicks).values(subscriber_id=subscriber_id, paper_id=paper_id,
                                               clicked_at=now or utcnow()))
            conn.execute(update(papers).where(papers.c.id == paper_id)
                         .values(clicks=func.coalesce(papers.c.clicks, 0) + 1))
    except IntegrityError:
        return False
    return True

