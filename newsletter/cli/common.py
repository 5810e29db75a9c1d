"""What every command shares: consoles, one-line errors, progress, opening the database."""

from __future__ import annotations

import asyncio
import functools
import re
import signal
from datetime import UTC, datetime, time
from typing import Any, Callable, Optional, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.catalog.ingest import IngestReport, expand_paths
from newsletter.dispatch import ledger, schedule
from newsletter.errors import NewsletterError
from newsletter.preflight import Finding, preflight, require_ready
from newsletter.settings import Settings
from newsletter.store.catalog import count_papers
from newsletter.store.schema import connect, utcnow
from newsletter.store.subscribers import sync_subscribers
from newsletter.subscribers import read_subscriber_files

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def reflow(doc: str | None) -> str | None:
    """A docstring as help text: each paragraph one line (the terminal wraps it), paragraphs
    kept apart; without this, rich help breaks lines where the source did."""
    if not doc:
        return doc
    paragraphs = re.split(r"\n\s*\n", doc.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def friendly(command: F) -> F:
    """Known failures end as one clear line and exit code 2, not a traceback."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NewsletterError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "NEWSLETTER_" + "_".join(str(p) for p in first["loc"]).upper()
            err.print(f"[red]error:[/] setting {name}: {first['msg']} (see .env.example)",
                      soft_wrap=True)
        except SQLAlchemyError as exc:
            err.print(f"[red]error:[/] database: {exc.__class__.__name__}: "
                      f"{str(exc).splitlines()[0]} (check NEWSLETTER_DATABASE_URL)", soft_wrap=True)
        raise typer.Exit(2)
    wrapper.__doc__ = reflow(command.__doc__)
    return wrapper  # type: ignore[return-value]


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def open_database() -> tuple[Settings, Engine]:
    settings = Settings()
    return settings, connect(settings.database_url)


def print_findings(findings: list[Finding]) -> None:
    """Preflight findings, one line each: what is wrong and the setting to change."""
    for finding in findings:
        label = "[red]refused[/]" if finding.level == "refuse" else "[yellow]warning[/]"
        err.print(f"{label} {finding}", highlight=False, soft_wrap=True)


def preflight_for_smtp(settings: Settings, dry_run: bool = False, quiet: bool = False) -> None:
    """Before the first SMTP message: refuse (ConfigError, exit 2) on settings that would send
    every reader a broken digest; print the warnings unless ``quiet``. The outbox needs none of
    it. A dry run, or NEWSLETTER_PREFLIGHT=warn, prints what would be refused and goes on."""
    if not settings.smtp_host:
        return
    lenient = dry_run or settings.preflight == "warn"
    findings = preflight(settings) if lenient else require_ready(settings)
    if not quiet:
        print_findings(findings)
        if not dry_run and any(f.level == "refuse" for f in findings):
            err.print("NEWSLETTER_PREFLIGHT=warn: sending anyway.", highlight=False)


def warn(problems: list[Any]) -> None:
    for problem in problems:
        err.print(f"[yellow]skipped[/] {problem}", highlight=False, soft_wrap=True)


def ingest_with_progress(engine: Engine, paths: list[Any]) -> IngestReport:
    with progress_bar() as bar:
        task = bar.add_task("Ingesting", total=len(expand_paths(paths)))
        report = schedule.ingest_exclusive(engine, paths, utcnow(), ledger.lock_owner(),
                                           progress=lambda n=1: bar.advance(task, n))
    warn(report.rejected)
    return report


def sync_files(engine: Engine, settings: Settings) -> None:
    found, problems = read_subscriber_files(settings.subscribers_dir)
    warn(problems)
    sync_subscribers(engine, found)


def ensure_catalog(engine: Engine, settings: Settings) -> None:
    if count_papers(engine) == 0:
        err.print("The catalog is empty: ingesting " + ", ".join(settings.sources))
        report = ingest_with_progress(engine, list(settings.sources))
        err.print(f"Catalog: {count_papers(engine)} papers from {report.files} files.")


def edition_time(day: Optional[str]) -> datetime:
    if not day:
        return utcnow()
    try:
        return datetime.combine(datetime.strptime(day, "%Y-%m-%d").date(), time(12), UTC)
    except ValueError:
        raise NewsletterError(f"--date {day!r}: expected YYYY-MM-DD") from None


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
