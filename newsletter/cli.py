"""The ``newsletter`` command: a thin driver over the pipeline stages."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import signal
import tempfile
import webbrowser
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.catalog.ingest import IngestReport, expand_paths
from newsletter.dispatch import claims, ledger, schedule
from newsletter.dispatch.deliver import Pipeline, SendReport
from newsletter.dispatch.worker import Worker
from newsletter.errors import NewsletterError
from newsletter.relevance.rank import build_ranker
from newsletter.relevance.select import edition_for
from newsletter.settings import Settings
from newsletter.store.catalog import count_papers, load_papers
from newsletter.store.schema import connect, utcnow
from newsletter.store.subscribers import load_subscribers, sync_subscribers
from newsletter.subscribers import read_subscriber_files

app = typer.Typer(
    help="Trending research papers in your inbox: ingest a catalog, pick papers for each "
         "subscriber's topics, and send personalized digests over SMTP (or to an outbox "
         "folder). Settings come from NEWSLETTER_* variables or a .env file; see .env.example.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
)
subscribers_app = typer.Typer(help="List and check the subscriber files in subscribers/.",
                              no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly(command: F) -> F:
    """Known failures end as one clear line and exit code 2, not a traceback."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NewsletterError as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "NEWSLETTER_" + "_".join(str(p) for p in first["loc"]).upper()
            err.print(f"[red]error:[/] setting {name}: {first['msg']} (see .env.example)")
        except SQLAlchemyError as exc:
            err.print(f"[red]error:[/] database: {exc.__class__.__name__}: "
                      f"{str(exc).splitlines()[0]} (check NEWSLETTER_DATABASE_URL)")
        raise typer.Exit(2)
    return wrapper  # type: ignore[return-value]


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def _open() -> tuple[Settings, Engine]:
    settings = Settings()
    return settings, connect(settings.database_url)


def _warn(problems: list[Any]) -> None:
    for problem in problems:
        err.print(f"[yellow]skipped[/] {problem}", highlight=False, soft_wrap=True)


def _ingest(engine: Engine, paths: list[Any]) -> IngestReport:
    with _progress() as bar:
        task = bar.add_task("Ingesting", total=len(expand_paths(paths)))
        report = schedule.ingest_exclusive(engine, paths, utcnow(), ledger.lock_owner(),
                                           progress=lambda n=1: bar.advance(task, n))
    _warn(report.rejected)
    return report


def _sync(engine: Engine, settings: Settings) -> None:
    found, problems = read_subscriber_files(settings.subscribers_dir)
    _warn(problems)
    sync_subscribers(engine, found)


def _ensure_catalog(engine: Engine, settings: Settings) -> None:
    if count_papers(engine) == 0:
        err.print("The catalog is empty: ingesting " + ", ".join(settings.sources))
        report = _ingest(engine, list(settings.sources))
        err.print(f"Catalog: {count_papers(engine)} papers from {report.files} files.")


@app.command()
@friendly
def ingest(
    paths: Optional[list[str]] = typer.Argument(
        None, help="Files, folders or http(s) URLs: saved papers-site pages (.txt), Hugging "
                   "Face daily papers JSON, arXiv Atom or RSS, or JSON Lines; the format is "
                   "detected. Default: the configured sources (NEWSLETTER_SOURCES, seeds/)."),
) -> None:
    """Read catalog sources into the database; safe to repeat (idempotent).

    URLs are fetched with conditional requests (ETag / Last-Modified), so an unchanged feed
    costs one 304. A failing source is reported and the others go on.

    Reports how many papers are new, updated, unchanged, and every rejected entry with its
    file and line. Rejected entries are skipped; nothing already stored is lost.
    """
    settings, engine = _open()
    report = _ingest(engine, list(paths or settings.sources))
    not_modified = f", {report.not_modified} not modified since last fetch" if report.not_modified else ""
    out.print(f"Ingested {report.files} sources: [bold]{report.new}[/] new, {report.updated} "
              f"updated, {report.unchanged} unchanged, {len(report.rejected)} rejected"
              f"{not_modified}. The catalog holds {count_papers(engine)} papers.")


@subscribers_app.command("check")
@friendly
def subscribers_check() -> None:
    """Validate the subscriber files without touching the database; exit 1 on any problem."""
    settings = Settings()
    found, problems = read_subscriber_files(settings.subscribers_dir)
    _warn(problems)
    out.print(f"{len(found)} valid subscribers in {settings.subscribers_dir}, "
              f"{len(problems)} problems.")
    if problems:
        raise typer.Exit(1)


@subscribers_app.command("list")
@friendly
def subscribers_list() -> None:
    """Sync the subscriber files into the database and list everyone with their status."""
    settings, engine = _open()
    _sync(engine, settings)
    table = Table("email", "name", "topics", "frequency", "max", "status")
    for sub in load_subscribers(engine, statuses=None):
        table.add_row(sub.email, sub.name, ", ".join(sub.topics), sub.frequency,
                      str(sub.max_papers), sub.status)
    out.print(table)


def _now(day: Optional[str]) -> datetime:
    if not day:
        return utcnow()
    try:
        return datetime.combine(datetime.strptime(day, "%Y-%m-%d").date(), time(12), UTC)
    except ValueError:
        raise NewsletterError(f"--date {day!r}: expected YYYY-MM-DD") from None


@app.command()
@friendly
def send(
    to: Optional[str] = typer.Option(None, "--to", help="Send only to this subscriber."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Compose every digest and list them; send and record nothing."),
    day: Optional[str] = typer.Option(None, "--date", metavar="YYYY-MM-DD",
                                      help="Send the edition of this day (noon UTC) instead of today's."),
    workers: int = typer.Option(
        0, "--workers", min=0, max=64,
        help="Processes sending at once. 0 (default): one per core when more than "
             f"{schedule.AUTO_HELPERS_FROM:,} digests are due, else one."),
) -> None:
    """Send every digest that is due: the main job.

    Syncs subscribers/ into the database, ingests the configured sources when the catalog is
    empty, queues each active subscriber's current edition unless the ledger says it was
    already handled, and sends the queue. A second run for the same edition sends nothing.
    Mail goes over SMTP when NEWSLETTER_SMTP_HOST is set, else to the outbox folder.
    `newsletter worker` processes on the same database share the sending.
    """
    settings, engine = _open()
    _sync(engine, settings)
    _ensure_catalog(engine, settings)
    subs = load_subscribers(engine, email=to) if to else None
    if to and not subs:
        raise NewsletterError(f"{to} is not an active subscriber (see `newsletter subscribers list`)")
    with _progress() as bar:
        def progress(total: int) -> Callable[[], None]:
            task = bar.add_task("Composing" if dry_run else "Sending", total=total)
            if not dry_run:  # helper processes send too: the queue tells how far we are
                asyncio.get_running_loop().create_task(_poll_progress(engine, bar, task, total))
            return lambda: bar.advance(task)

        report = asyncio.run(_send(engine, settings, subs, _now(day), dry_run, progress,
                                   None if workers == 0 else workers - 1))
    _print_report(report)
    if report.failed or report.stopped:
        raise typer.Exit(1)


async def _poll_progress(engine: Engine, bar: Progress, task: Any, total: int) -> None:
    while True:
        await asyncio.sleep(0.5)
        remaining = sum(claims.unfinished(engine))
        bar.update(task, completed=max(bar.tasks[task].completed, total - remaining))


async def _send(engine: Engine, settings: Settings, subs: list[Any] | None, now: datetime,
                dry_run: bool, progress: Callable[[int], Callable[[], None]],
                helpers: int | None) -> SendReport:
    """A manual dispatch; Ctrl-C or SIGTERM finishes the messages in flight and stops."""
    stop = _stop_on_signals()
    return await schedule.dispatch(engine, settings, now, owner=ledger.lock_owner(),
                                   subscribers=subs, manual=True, dry_run=dry_run, stop=stop,
                                   progress=progress, helpers=helpers)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _print_report(report: SendReport, quiet: bool = False) -> None:
    for email, error in report.failed:
        err.print(f"[red]failed[/] {email}: {error}", highlight=False, soft_wrap=True)
    for email, error in report.uncertain:
        err.print(f"[yellow]uncertain[/] {email}: {error} (not resent automatically; "
                  "see `newsletter status`)", highlight=False, soft_wrap=True)
    for email, error in report.retrying:
        err.print(f"[yellow]retrying[/] {email}: {error} (the next run retries it)",
                  highlight=False, soft_wrap=True)
    for email in report.suppressed:
        err.print(f"[red]suppressed[/] {email}: too many permanent failures; status is now "
                  "bounced", highlight=False)
    if report.pauses:
        err.print(f"Paused {report.pauses} times: the relay kept answering with temporary "
                  "errors.")
    if report.stopped:
        err.print(f"[yellow]Stopped[/]: {report.stopped} digests left for the next run.")
    if quiet:
        return
    if report.dry_run:
        table = Table("to", "papers", "subject", title="Dry run: nothing sent, nothing recorded")
        for email, count, subject in report.planned:
            table.add_row(email, str(count), subject)
        out.print(table)
        out.print(f"{len(report.planned)} digests would go to {report.destination}; "
                  f"{report.empty} subscribers have nothing relevant and new; "
                  f"{report.already} already handled.")
        return
    helped = report.by_helpers
    sent = report.sent + helped.get("sent", 0)
    handled = sent + report.empty + len(report.failed) + len(report.uncertain)
    if report.already and not handled:
        out.print(f"Nothing to send: all {report.already} digests of this edition were "
                  "already handled.")
        return
    waiting = f", {report.waiting} waiting to be retried later" if report.waiting else ""
    by = f" ({helped.get('sent', 0)} of them by helper processes)" if helped else ""
    out.print(f"Sent [bold]{sent}[/] digests to {report.destination}{by}. "
              f"Skipped {report.empty + helped.get('skipped', 0)} with nothing relevant "
              f"and new, {report.already} already handled, "
              f"{len(report.failed) + helped.get('failed', 0)} failed, "
              f"{len(report.uncertain) + helped.get('uncertain', 0)} uncertain{waiting}.")


@app.command()
@friendly
def worker(
    drain: bool = typer.Option(False, "--drain",
                               help="Exit once nothing is left to send, instead of waiting for more."),
    quiet: bool = typer.Option(False, "--quiet", help="Print failures only."),
    now: Optional[str] = typer.Option(None, "--now", hidden=True,
                                      help="Compose as of this ISO time (set by `send`)."),
) -> None:
    """Send queued digests: claim pending deliveries in batches, send them, record each.

    `newsletter run` (or `send`) queues what is due; any number of workers share the sending,
    one per core, on this host or on others with the same NEWSLETTER_DATABASE_URL
    (PostgreSQL) and SMTP settings. A worker that dies leaves its batch to the others after
    NEWSLETTER_WORKER_LEASE_SECONDS. SIGTERM or Ctrl-C finishes the messages in flight, then
    exits.
    """
    settings, engine = _open()
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                            datefmt="%Y-%m-%d %H:%M:%S")
        err.print(f"Worker started; mail goes to {settings.describe_delivery()}.")
    fixed = datetime.fromisoformat(now) if now else None
    report = asyncio.run(_work(engine, settings, drain, fixed))
    _print_report(report, quiet)
    if report.failed or report.stopped:
        raise typer.Exit(1)


async def _work(engine: Engine, settings: Settings, drain: bool,
                now: datetime | None) -> SendReport:
    stop = _stop_on_signals()
    return await Worker(engine, settings, owner=ledger.lock_owner(), now=now, drain=drain,
                        stop=stop).run()


@app.command()
@friendly
def run() -> None:
    """Run the scheduler: ingest the sources periodically and send each digest when due.

    Each subscriber gets their digest at their own local send time and timezone, daily or
    weekly. After downtime the latest missed edition goes out once (unless older than
    NEWSLETTER_STALE_AFTER_HOURS). Several `run` processes, and `newsletter worker`
    processes, on one database share the sending; each digest goes out once. SIGTERM or
    Ctrl-C finishes the messages in flight, then exits.
    """
    settings, engine = _open()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    _sync(engine, settings)
    _ensure_catalog(engine, settings)
    err.print(f"Scheduler started; mail goes to {settings.describe_delivery()}. Ctrl-C stops.")
    asyncio.run(schedule.run(settings, engine))
    err.print("Scheduler stopped.")


@app.command()
@friendly
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the subscriber pages: one-click unsubscribe, preferences, sign-up, gallery.

    The links in every digest lead here, so NEWSLETTER_BASE_URL must be the public address of
    this server (put a TLS-terminating proxy in front of it). Sign-up confirmation emails go
    through the configured transport. The operator's preview gallery at /admin needs
    NEWSLETTER_ADMIN_PASSWORD. Ctrl-C stops.
    """
    import uvicorn  # only this command needs the web stack

    from newsletter.web import create_app

    settings, engine = _open()
    err.print(f"Serving on http://{host}:{port} (links point to {settings.base_url}); "
              f"mail goes to {settings.describe_delivery()}. Ctrl-C stops.")
    # No access log: its lines would hold the signed links, each one a key to someone's
    # subscription, in a file that is kept, copied and shared.
    uvicorn.run(create_app(settings, engine), host=host, port=port, proxy_headers=True,
                server_header=False, access_log=False, log_level="info")


@app.command()
@friendly
def preview(
    email: str = typer.Argument(..., help="The subscriber whose next digest to show."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout."),
    text: bool = typer.Option(False, "--text", help="The plain-text part instead of the HTML."),
    open_: bool = typer.Option(False, "--open", help="Open the result in a web browser."),
) -> None:
    """Render exactly what `send` would send to EMAIL now, without sending or recording."""
    settings, engine = _open()
    _sync(engine, settings)
    _ensure_catalog(engine, settings)
    subs = load_subscribers(engine, statuses=None, email=email)
    if not subs:
        raise NewsletterError(f"{email} is not a subscriber (see `newsletter subscribers list`)")
    sent = ledger.sent_papers_by_subscriber(engine, [subs[0].id or 0])
    now = utcnow()
    composed = Pipeline.build(engine, settings, now).compose(
        subs[0], sent.get(subs[0].id or 0, set()), edition_for(subs[0], now))
    if composed is None:
        err.print(f"Nothing relevant and new for {email}: `send` would skip them.")
        raise typer.Exit(1)
    body = composed.rendered.text if text else composed.rendered.html
    if open_ and out_file is None:
        out_file = Path(tempfile.mkstemp(suffix=".txt" if text else ".html")[1])
    if out_file is None:
        typer.echo(body)
        return
    out_file.write_text(body, encoding="utf-8")
    err.print(f"Wrote {out_file} ({len(body.encode()) // 1024} KB): "
              f"{composed.rendered.subject}", highlight=False)
    if open_:
        webbrowser.open(out_file.resolve().as_uri())


@app.command()
@friendly
def recommend(
    topic: list[str] = typer.Option(..., "--topic", help="A topic; repeat for several."),
    limit: int = typer.Option(10, "--limit", min=1, help="How many papers."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Rank the catalog for some topics with the same ranker `send` uses."""
    if fmt not in ("table", "json"):
        raise NewsletterError(f"--format {fmt!r}: use table or json")
    settings, engine = _open()
    _ensure_catalog(engine, settings)
    ranker = build_ranker(load_papers(engine), engine, semantic=settings.semantic != "off")
    matches = ranker.recommend(topic, limit)
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


@app.command()
@friendly
def status() -> None:
    """Show each edition's deliveries by state, and what failed or needs a look."""
    settings, engine = _open()
    out.print(f"Catalog: {count_papers(engine)} papers. Mail goes to "
              f"{settings.describe_delivery()}.")
    table = Table("edition", "state", "count", title="Deliveries")
    for row in ledger.counts(engine):
        table.add_row(row.edition, row.state, str(row.count))
    out.print(table)
    entries = ledger.problems(engine)
    if not entries:
        out.print("No failures, retries or uncertain deliveries.")
        return
    out.print("[bold]Needs attention[/] (most recent first):")
    for e in entries:  # one line each, never wrapped: the SMTP reply stays greppable
        when = f", next try {e.next_attempt_at:%Y-%m-%d %H:%M} UTC" if e.next_attempt_at else ""
        out.print(f"  {e.state:<9} {e.email}  edition {e.edition}, {e.attempts} attempt(s)"
                  f"{when}: {e.error or ''}", highlight=False, soft_wrap=True)
    uncertain = sum(1 for e in entries if e.state == "uncertain")
    if uncertain:
        out.print(f"[yellow]{uncertain} uncertain[/]: the server may have accepted these; they are "
                  "never resent automatically. Check the relay's log for their Message-IDs.")
