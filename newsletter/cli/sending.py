"""`send`, `worker` and `run`: the commands that send mail."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import datetime
from typing import Any, Callable, Optional

import typer
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.cli.common import (
    edition_time,
    ensure_catalog,
    friendly,
    open_database,
    out,
    preflight_for_smtp,
    progress_bar,
    say,
    stop_on_signals,
    sync_files,
)
from newsletter.dispatch import claims, ledger, schedule
from newsletter.dispatch.deliver import SendReport
from newsletter.dispatch.worker import POLL_SECONDS, Worker, tally
from newsletter.errors import NewsletterError
from newsletter.settings import Settings
from newsletter.store.subscribers import load_subscribers


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
    settings, engine = open_database()
    preflight_for_smtp(settings, dry_run)
    sync_files(engine, settings)
    ensure_catalog(engine, settings)
    subs = load_subscribers(engine, email=to) if to else None
    if to and not subs:
        raise NewsletterError(f"{to} is not an active subscriber (see `newsletter subscribers list`)")
    with progress_bar() as bar:
        def progress(total: int) -> Callable[[], None]:
            task = bar.add_task("Composing" if dry_run else "Sending", total=total)
            if not dry_run:  # helper processes send too: the queue tells how far we are
                asyncio.get_running_loop().create_task(_poll_progress(engine, bar, task, total))
            return lambda: bar.advance(task)

        report = asyncio.run(_send(engine, settings, subs, edition_time(day), dry_run, progress,
                                   None if workers == 0 else workers - 1))
    _print_report(report)
    if _unfinished_business(report):
        raise typer.Exit(1)


def _unfinished_business(report: SendReport) -> bool:
    """Exit code 1: a digest failed or may not have arrived, or some were left for later."""
    helped = report.by_helpers
    return bool(report.failed or report.uncertain or report.stopped
                or helped.get("failed") or helped.get("uncertain"))


async def _poll_progress(engine: Engine, bar: Progress, task: Any, total: int) -> None:
    while True:
        await asyncio.sleep(0.5)
        try:
            remaining = sum(claims.unfinished(engine))
        except (SQLAlchemyError, NewsletterError):
            return  # the bar stops moving; the worker reports what went wrong
        bar.update(task, completed=max(bar.tasks[task].completed, total - remaining))


async def _send(engine: Engine, settings: Settings, subs: list[Any] | None, now: datetime,
                dry_run: bool, progress: Callable[[int], Callable[[], None]],
                helpers: int | None) -> SendReport:
    """A manual dispatch; Ctrl-C or SIGTERM finishes the messages in flight and stops."""
    stop = stop_on_signals()
    return await schedule.dispatch(engine, settings, now, owner=ledger.lock_owner(),
                                   subscribers=subs, manual=True, dry_run=dry_run, stop=stop,
                                   progress=progress, helpers=helpers)


def _print_report(report: SendReport, quiet: bool = False) -> None:
    for email, error in report.failed:
        say(("failed ", "red"), f"{email}: {error}", stderr=True, wrap=False)
    for email, error in report.uncertain:
        say(("uncertain ", "yellow"), f"{email}: {error} (not resent automatically; see "
                                       "`newsletter status`)", stderr=True, wrap=False)
    for email, error in report.retrying:
        say(("retrying ", "yellow"), f"{email}: {error} (the next run retries it)",
            stderr=True, wrap=False)
    for email in report.suppressed:
        say(("suppressed ", "red"), f"{email}: too many permanent failures; status is now "
                                     "bounced", stderr=True, wrap=False)
    if report.pauses:
        say(f"Paused {report.pauses} times: the relay kept answering with temporary errors.",
            stderr=True)
    if report.stopped:
        say(("Stopped", "yellow"), f": {report.stopped} digests left for the next run.",
            stderr=True)
    if quiet:
        return
    if report.dry_run:
        table = Table("to", "papers", "subject", title="Dry run: nothing sent, nothing recorded")
        for email, count, subject in report.planned:
            table.add_row(email, str(count), subject)
        out.print(table)
        say(f"{len(report.planned)} digests would go to {report.destination}; "
            f"{report.empty} subscribers have nothing relevant and new; "
            f"{report.already} already handled.")
        return
    helped = report.by_helpers
    sent = report.sent + helped.get("sent", 0)
    handled = sent + report.empty + len(report.failed) + len(report.uncertain)
    if report.already and not handled:
        say(f"Nothing to send: all {report.already} digests of this edition were already "
            "handled.")
        return
    waiting = f", {report.waiting} waiting to be retried later" if report.waiting else ""
    stale = report.stale + helped.get("stale", 0)
    stale_text = (f", {stale} stale (due longer ago than NEWSLETTER_STALE_AFTER_HOURS: not "
                  "sent late)") if stale else ""
    by = f" ({helped.get('sent', 0)} of them by helper processes)" if helped else ""
    say("Sent ", (str(sent), "bold"), f" digests to {report.destination}{by}. "
        f"Skipped {report.empty + helped.get('skipped', 0)} with nothing relevant "
        f"and new, {report.already} already handled, "
        f"{len(report.failed) + helped.get('failed', 0)} failed, "
        f"{len(report.uncertain) + helped.get('uncertain', 0)} uncertain{stale_text}{waiting}.")


@friendly
def worker(
    drain: bool = typer.Option(False, "--drain",
                               help="Exit once nothing is left to send, instead of waiting for more."),
    quiet: bool = typer.Option(False, "--quiet", help="Print failures only."),
    now: Optional[str] = typer.Option(None, "--now", hidden=True,
                                      help="Compose as of this ISO time (set by `send`)."),
    checked: bool = typer.Option(False, "--checked", hidden=True,
                                 help="The settings passed the preflight (set by `send`)."),
    helper_of: Optional[int] = typer.Option(
        None, "--helper-of", hidden=True, metavar="PID",
        help="Set by `send` for its helpers: stop when that process is gone, and print a "
             "JSON tally on stdout at the end."),
) -> None:
    """Send queued digests: claim pending deliveries in batches, send them, record each.

    `newsletter run` (or `send`) queues what is due; any number of workers share the sending,
    one per core, on this host or on others with the same NEWSLETTER_DATABASE_URL
    (PostgreSQL) and SMTP settings. A worker that dies leaves its batch to the others after
    NEWSLETTER_WORKER_LEASE_SECONDS. SIGTERM or Ctrl-C finishes the messages in flight, then
    exits.
    """
    settings, engine = open_database(create=helper_of is None)  # a helper's must exist
    if not checked:  # a helper of `send` starts right away: its parent checked these
        preflight_for_smtp(settings, quiet=quiet)
    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                            datefmt="%Y-%m-%d %H:%M:%S")
        say(f"Worker started; mail goes to {settings.describe_delivery()}.", stderr=True)
    fixed = datetime.fromisoformat(now) if now else None
    report = asyncio.run(_work(engine, settings, drain, fixed, helper_of))
    _print_report(report, quiet)
    if helper_of is not None:
        typer.echo(json.dumps(tally(report)))
    if _unfinished_business(report):
        raise typer.Exit(1)


async def _work(engine: Engine, settings: Settings, drain: bool, now: datetime | None,
                parent: int | None) -> SendReport:
    stop = stop_on_signals()
    watch = asyncio.create_task(_stop_when_orphaned(parent, stop)) if parent else None
    try:
        return await Worker(engine, settings, owner=ledger.lock_owner(), now=now, drain=drain,
                            stop=stop).run()
    finally:
        if watch:
            watch.cancel()


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    """A helper whose `send` died (even by kill -9) finishes its messages in flight and
    stops, as it would on SIGTERM: nobody would be left to report what it does."""
    while os.getppid() == parent:
        await asyncio.sleep(POLL_SECONDS)
    stop.set()


@friendly
def run() -> None:
    """Run the scheduler: ingest the sources periodically and send each digest when due.

    Each subscriber gets their digest at their own local send time and timezone, daily or
    weekly. After downtime the latest missed edition goes out once (unless older than
    NEWSLETTER_STALE_AFTER_HOURS). Several `run` processes, and `newsletter worker`
    processes, on one database share the sending; each digest goes out once. SIGTERM or
    Ctrl-C finishes the messages in flight, then exits.
    """
    settings, engine = open_database()
    preflight_for_smtp(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    sync_files(engine, settings)
    ensure_catalog(engine, settings)
    say(f"Scheduler started; mail goes to {settings.describe_delivery()}. Ctrl-C stops.",
        stderr=True)
    asyncio.run(schedule.run(settings, engine))
    say("Scheduler stopped.", stderr=True)
