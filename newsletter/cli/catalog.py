"""`ingest` and `recommend`: the catalog and its ranking."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from newsletter.cli.common import (
    ensure_catalog,
    err,
    friendly,
    ingest_with_progress,
    open_database,
    out,
    say,
)
from newsletter.errors import NewsletterError
from newsletter.relevance.rank import build_ranker
from newsletter.store.catalog import count_papers, load_papers


@friendly
def ingest(
    paths: Optional[list[str]] = typer.Argument(
        None, help="Files, folders or http(s) URLs: saved papers-site pages (.txt), Hugging "
                   "Face daily papers JSON, arXiv Atom or RSS, or JSON Lines; the format is "
                   "detected. Default: the configured sources (NEWSLETTER_SOURCES, seeds/)."),
) -> None:
    """Read catalog sources into the database; safe to repeat (idempotent).

    URLs are fetched with conditional requests (ETag / Last-Modified), so an unchanged feed
    costs one 304, each within NEWSLETTER_FETCH_DEADLINE_SECONDS. A failing source is reported
    and the others go on; each source is stored as soon as it is read.

    Reports how many papers are new, updated, unchanged, and every rejected entry with its
    file and line. Rejected entries are skipped; nothing already stored is lost. Exit code 1
    when not one source could be read.
    """
    settings, engine = open_database()
    report = ingest_with_progress(engine, settings, list(paths or settings.sources))
    not_modified = f", {report.not_modified} not modified since last fetch" if report.not_modified else ""
    say(f"Ingested {report.files} sources: ", (str(report.new), "bold"), f" new, "
        f"{report.updated} updated, {report.unchanged} unchanged, {len(report.rejected)} "
        f"rejected{not_modified}. The catalog holds {count_papers(engine)} papers.")
    if report.all_failed or report.stopped:  # a cron job must notice: the sources are wrong
        if report.all_failed:
            say(("Not one source could be read", "red"), ": check the paths and URLs above.",
                stderr=True)
        raise typer.Exit(1)


@friendly
def recommend(
    topic: list[str] = typer.Option(..., "--topic", help="A topic; repeat for several."),
    limit: int = typer.Option(10, "--limit", min=1, help="How many papers."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Rank the catalog for some topics with the same ranker `send` uses."""
    if fmt not in ("table", "json"):
        raise NewsletterError(f"--format {fmt!r}: use table or json")
    settings, engine = open_database()
    ensure_catalog(engine, settings)
    ranker = build_ranker(load_papers(engine), engine, semantic=settings.semantic)
    matches = ranker.recommend(topic, limit)
    for unmatched in [t for t in topic if not ranker.rank(t)]:
        err.print(f"No paper in the catalog matches {unmatched!r}: a reader with only this "
                  "topic gets no email. Try other words or a broader topic.")
    if fmt == "json":
        typer.echo(json.dumps([
            {"id": m.paper.id, "title": m.paper.title, "score": round(m.score, 4),
             "topic": m.topic, "reason": m.reason, "url": m.paper.url,
             "published": m.paper.published.isoformat() if m.paper.published else None}
            for m in matches], indent=2, ensure_ascii=False))
        return
    table = Table("score", "title", "reason")
    for m in matches:
        table.add_row(f"{m.score:.2f}", m.paper.title, m.reason)
    out.print(table)
