"""What every command shares: printing, one-line errors, progress, opening the database.

Everything a command prints goes through :func:`say` (or a rich Table) on consoles whose markup
and emoji codes are off: names, addresses, topics, file contents, feed ids and SMTP replies are
untrusted, and ``[/x]`` or ``:100:`` in them must print as typed, not crash or turn into an
emoji. Styles are given apart from the text, as ``(text, style)`` pairs.
"""

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
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.catalog.ingest import IngestReport, expand_paths
from newsletter.dispatch import ledger, schedule
from newsletter.errors import NewsletterError
from newsletter.preflight import Finding, preflight, require_ready
from newsletter.settings import Settings
from newsletter.store.catalog import count_papers
from newsletter.store.engine import SQLITE_BUSY_SECONDS, connect, utcnow
from newsletter.subscribers import read_roster, sync_roster

# No markup, no emoji codes, no guessing of numbers and URLs to colour: text prints as it is.
out = Console(markup=False, emoji=False, highlight=False)
err = Console(stderr=True, markup=False, emoji=False, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])
Part = str | tuple[str, str]  # text as it is, or (text, style) such as ("failed", "red")


def say(*parts: Part, stderr: bool = False, wrap: bool = True) -> None:
    """Print one line made of ``parts``: strings exactly as they are, ``(text, style)`` pairs
    styled. ``wrap=False`` keeps a long line whole (an SMTP reply stays greppable)."""
    (err if stderr else out).print(Text.assemble(*parts), soft_wrap=not wrap)


def reflow(doc: str | None) -> str | None:
    """A docstring as help text: each paragraph one line (the terminal wraps it), paragraphs
    kept apart; without this, rich help breaks lines where the source did."""
    if not doc:
        return doc
    paragraphs = re.split(r"\n\s*\n", doc.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


ERROR: Part = ("error: ", "red")


def friendly(command: F) -> F:
    """Known failures end as one clear line and exit code 2, not a traceback."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NewsletterError as exc:
            say(ERROR, str(exc), stderr=True, wrap=False)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "NEWSLETTER_" + "_".join(str(p) for p in first["loc"]).upper()
            message = first["msg"].removeprefix("Value error, ")
            say(ERROR, f"setting {name}: {message} (see .env.example)", stderr=True, wrap=False)
        except SQLAlchemyError as exc:
            say(ERROR, _database_trouble(exc), stderr=True, wrap=False)
        raise typer.Exit(2)
    wrapper.__doc__ = reflow(command.__doc__)
    return wrapper  # type: ignore[return-value]


def _database_trouble(exc: SQLAlchemyError) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    if "database is locked" in first:
        # SQLite's busy timeout ran out: the setting is right, some other process holds the
        # write lock. What this run did is in the ledger, so a rerun finishes the job.
        return (f"database: locked by another process for over {SQLITE_BUSY_SECONDS} s "
                "(another send, run or worker, or a tool holding it open); what was done is "
                "kept: run it again once that process is done")
    return f"database: {exc.__class__.__name__}: {first} (check NEWSLETTER_DATABASE_URL)"


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def open_database(create: bool = True) -> tuple[Settings, Engine]:
    """The settings and the database; ``create=False``: a missing SQLite file is an error."""
    settings = Settings()
    return settings, connect(settings.database_url, create=create)


def print_findings(findings: list[Finding]) -> None:
    """Preflight findings, one line each: what is wrong and the setting to change."""
    for finding in findings:
        label = ("refused ", "red") if finding.level == "refuse" else ("warning ", "yellow")
        say(label, str(finding), stderr=True, wrap=False)


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
            say("NEWSLETTER_PREFLIGHT=warn: sending anyway.", stderr=True)


def warn(problems: list[Any]) -> None:
    for problem in problems:
        say(("skipped ", "yellow"), str(problem), stderr=True, wrap=False)


def ingest_with_progress(engine: Engine, settings: Settings, paths: list[Any]) -> IngestReport:
    with progress_bar() as bar:
        task = bar.add_task("Ingesting", total=len(expand_paths(paths)))
        report = schedule.ingest_exclusive(engine, settings, paths, utcnow(),
                                           ledger.lock_owner(),
                                           progress=lambda n=1: bar.advance(task, n))
    warn(report.rejected)
    if report.stopped:
        say(("Stopped", "yellow"), f": {report.stopped}", stderr=True, wrap=False)
    return report


def sync_files(engine: Engine, settings: Settings) -> None:
    roster = read_roster(settings.subscribers_dir)
    warn(roster.problems)
    sync_roster(engine, roster)


def ensure_catalog(engine: Engine, settings: Settings) -> None:
    if count_papers(engine) == 0:
        say("The catalog is empty: ingesting " + ", ".join(settings.sources), stderr=True)
        report = ingest_with_progress(engine, settings, list(settings.sources))
        papers = count_papers(engine)
        if papers == 0:  # every digest would be "nothing new": send nothing, and say so
            raise NewsletterError("the catalog is still empty: not one paper could be read from "
                                  "NEWSLETTER_SOURCES (see the problems above); nothing was sent")
        say(f"Catalog: {papers} papers from {report.files} files.", stderr=True)


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
