"""Planning and dispatching, and ``newsletter run``: APScheduler 3 with its jobs in our database.

A dispatch *plans* (a pending delivery per subscriber whose edition is due, ``due.py``) and then
*works* the queue until it is empty (``worker.py``). Two scheduled jobs: ingest the configured
sources every ``ingest_interval_minutes``, and a dispatch tick every
``dispatch_interval_seconds``; with a mailbox of returns configured, a third reads it every
``returns_interval_minutes`` (``newsletter.returns``). Any number of ``newsletter run``,
``send`` and ``worker`` processes may share one database: planning twice adds nothing (a
unique key per subscriber and edition), and each delivery is claimed by one worker at a time
(``claims.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Callable, Iterator

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, MetaData

from newsletter.delivery.transport import Transport, make_transport
from newsletter.dispatch import claims, ledger
from newsletter.dispatch.deliver import Pipeline, SendReport, rehearse
from newsletter.dispatch.due import due_slot
from newsletter.dispatch.exclusive import Busy, ingest_exclusive
from newsletter.dispatch.worker import Worker, helper_tally, spawn
from newsletter.errors import ConfigError, NewsletterError
from newsletter.models import Subscriber
from newsletter.relevance.select import edition_for
from newsletter.returns.mailboxes import open_mailbox
from newsletter.returns.process import process_returns
from newsletter.settings import Settings
from newsletter.store.catalog import count_papers
from newsletter.store.engine import create_tables, utcnow
from newsletter.store.schema import secret_key
from newsletter.store.subscribers import (
    count_subscribers,
    iter_subscribers,
    load_subscribers,
)
from newsletter.subscribers import read_roster, sync_roster

log = logging.getLogger("newsletter")
AUTO_HELPERS_FROM = 2000  # below this, starting another process costs more than it saves


@dataclass
class Plan:
    new: int = 0  # pending rows added
    already: int = 0  # handled, or in flight elsewhere
    waiting: int = 0  # retries whose time has not come
    open: int = 0  # pending, sending or due deliveries in the queue now (any run's)


class RelayUnreachable(ConfigError):
    """The relay cannot be reached, so nothing was queued: queued digests would pile up and go
    out all at once, stale, when it comes back."""


def due_editions(subs: list[Subscriber], settings: Settings, now: datetime,
                 manual: bool) -> dict[int, tuple[Subscriber, str, datetime]]:
    """Each subscriber's edition due at ``now`` and when it was due (their latest slot);
    ``manual``: their current edition, due now."""
    stale = timedelta(hours=settings.stale_after_hours)
    editions = {}
    for sub in subs:
        if sub.id is None:
            continue
        if manual:
            editions[sub.id] = (sub, edition_for(sub, now), now)
        elif (slot := due_slot(sub, now, stale)) is not None:
            editions[sub.id] = (sub, edition_for(sub, slot), slot)
    return editions


def _fresh_rows(engine: Engine, settings: Settings, now: datetime, result: Plan,
                subscribers: list[Subscriber] | None,
                manual: bool) -> Iterator[list[tuple[int, str, datetime]]]:
    """The rows to queue, a chunk of subscribers at a time; counts the others in ``result``."""
    utc = utcnow()
    chunks = iter_subscribers(engine) if subscribers is None else [subscribers]
    for chunk in chunks:
        due = due_editions(chunk, settings, now, manual)
        states = ledger.states_for(engine, {i: e for i, (_, e, _) in due.items()})
        fresh = []
        for sub_id, (_, edition, due_at) in due.items():
            state, next_at = states.get(sub_id, (None, None))
            if state is None:
                fresh.append((sub_id, edition, due_at))
            elif state in ledger.HANDLED:
                result.already += 1
            elif state == ledger.RETRYING and next_at and next_at > utc:
                result.waiting += 1
        yield fresh


def plan(engine: Engine, settings: Settings, now: datetime, *,
         subscribers: list[Subscriber] | None = None, manual: bool = False,
         first_queued: Callable[[], object] | None = None) -> Plan:
    """Queue a pending delivery for each subscriber whose edition is due at ``now``
    (``manual``: everyone's current edition), a chunk of subscribers at a time.
    ``first_queued`` is called once the first rows are in: workers may start meanwhile."""
    result = Plan()
    for fresh in _fresh_rows(engine, settings, now, result, subscribers, manual):
        first_queued = _queue(engine, fresh, result, first_queued)
    result.open = sum(claims.unfinished(engine))
    return result


def _queue(engine: Engine, fresh: list[tuple[int, str, datetime]], result: Plan,
           first_queued: Callable[[], object] | None) -> Callable[[], object] | None:
    """Insert ``fresh``; call ``first_queued`` once the first rows are in (then it is spent)."""
    result.new += claims.plan(engine, fresh, utcnow())
    if first_queued and result.new:
        first_queued()
        return None
    return first_queued


async def plan_when_reachable(engine: Engine, settings: Settings, now: datetime,
                              transport: Transport, *, subscribers: list[Subscriber] | None = None,
                              manual: bool = False,
                              first_queued: Callable[[], object] | None = None) -> Plan:
    """``plan``, but nothing is queued until the relay has answered (once, before the first
    row): during an outage every run queues nothing, so no backlog of missed editions goes
    out when it is back. Raises RelayUnreachable."""
    result, checked = Plan(), False
    for fresh in _fresh_rows(engine, settings, now, result, subscribers, manual):
        if fresh and not checked:
            try:
                await transport.check()
            except NewsletterError as exc:
                raise RelayUnreachable(f"{exc} Nothing was queued; the next run tries again.") \
                    from exc
            checked = True
        first_queued = _queue(engine, fresh, result, first_queued)
    result.open = sum(claims.unfinished(engine))
    return result


async def dispatch(engine: Engine, settings: Settings, now: datetime, *, owner: str,
                   subscribers: list[Subscriber] | None = None, manual: bool = False,
                   dry_run: bool = False, stop: asyncio.Event | None = None,
                   progress: Callable[[int], Callable[[], None]] | None = None,
                   helpers: int | None = 0) -> SendReport:
    """Send what is due at ``now`` (``manual``: every subscriber's current edition): plan,
    then work until the queue is empty, with ``helpers`` more worker processes (None: one per
    spare core when the run is large). Other workers on the database share the work too."""
    if count_papers(engine) == 0:
        # An empty catalog would mark every digest "nothing new" for the whole edition.
        raise NewsletterError("the catalog is empty, so nothing was sent: check the sources "
                              "(NEWSLETTER_SOURCES) with `newsletter ingest`")
    transport = make_transport(settings)
    if dry_run:
        subs = load_subscribers(engine) if subscribers is None else subscribers
        return rehearse(Pipeline.build(engine, settings, now), engine,
                        due_editions(subs, settings, now, manual),
                        SendReport(transport.describe(), dry_run=True))
    procs: list[subprocess.Popen[str]] = []

    def start_helpers() -> None:  # they load their index while the rest is planned
        count = helpers
        if count is None:
            due = count_subscribers(engine) if subscribers is None else len(subscribers)
            count = (os.cpu_count() or 1) - 1 if due >= AUTO_HELPERS_FROM else 0
        procs.extend(spawn(settings, count, now))

    async with transport:
        planned = await plan_when_reachable(
            engine, settings, now, transport, subscribers=subscribers, manual=manual,
            first_queued=start_helpers if helpers != 0 else None)
        stop = stop or asyncio.Event()
        worker = Worker(engine, settings, owner=owner, now=now, stop=stop, transport=transport,
                        progress=progress(planned.open) if progress else None)
        forward = asyncio.ensure_future(_forward_stop(stop, procs))
        try:
            report = await worker.run()
        finally:
            tallies = await asyncio.gather(*(asyncio.to_thread(helper_tally, p) for p in procs))
            forward.cancel()
    if procs:
        report.by_helpers = dict(sum((Counter(t) for t in tallies), Counter()))
    report.already += planned.already
    report.waiting += planned.waiting
    return report


async def _forward_stop(stop: asyncio.Event, procs: list[subprocess.Popen[str]]) -> None:
    """Ctrl-C or SIGTERM: the helpers too finish the messages in their hands, then stop."""
    await stop.wait()
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)


# -- newsletter run ---------------------------------------------------------------------------


@dataclass
class Runtime:
    """What the scheduled jobs need; APScheduler stores the jobs by name, not their state."""

    settings: Settings
    engine: Engine
    owner: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    halt: threading.Event = field(default_factory=threading.Event)  # the ingest thread's stop
    clock: Callable[[], datetime] = utcnow
    active: asyncio.Task[None] | None = None  # the dispatch job, while it runs
    ingesting: asyncio.Task[None] | None = None  # the ingest job, while it runs


_runtime: Runtime | None = None


async def dispatch_job() -> None:
    rt = _runtime
    if rt is None or rt.stop.is_set():
        return
    rt.active = asyncio.current_task()  # type: ignore[assignment]
    try:
        roster = read_roster(rt.settings.subscribers_dir)
        for problem in roster.problems:
            log.warning("skipped %s", problem)
        sync_roster(rt.engine, roster)
        report = await dispatch(rt.engine, rt.settings, rt.clock(), owner=rt.owner, stop=rt.stop)
    except NewsletterError as exc:
        log.error("dispatch: %s", exc)
        return
    finally:
        rt.active = None
    if report.sent or report.failed or report.uncertain or report.retrying:
        log.info("dispatch: sent %d, nothing new for %d, failed %d, uncertain %d, retrying %d",
                 report.sent, report.empty, len(report.failed),
                 len(report.uncertain), len(report.retrying))


def returns_job() -> None:
    """Read the mailbox of returns (``newsletter.returns``): bounces, complaints, unsubscribes."""
    rt = _runtime
    if rt is None or rt.stop.is_set():
        return
    try:
        secret = (rt.settings.secret_key.get_secret_value() if rt.settings.secret_key
                  else secret_key(rt.engine))
        report = process_returns(rt.engine, rt.settings, secret, rt.clock())
    except NewsletterError as exc:
        log.error("returns: %s", exc)
        return
    for item in report.handled:
        log.info("returns: %s %s (edition %s): %s", item.report.kind, item.email or "nobody",
                 item.edition or "-", item.effect)
    for key, why in report.left:
        log.warning("returns: left message %s in place for a person: %s", key, why)


async def ingest_job() -> None:
    rt = _runtime
    if rt is None or rt.stop.is_set():
        return
    rt.ingesting = asyncio.current_task()  # type: ignore[assignment]
    try:  # in a thread: a stop request (``halt``) cuts a slow source off at once
        report = await asyncio.to_thread(
            ingest_exclusive, rt.engine, rt.settings, list(rt.settings.sources), rt.clock(),
            rt.owner, wait=0, stop=rt.halt)
    except Busy:
        return  # another scheduler is ingesting the same sources right now
    finally:
        rt.ingesting = None
    for problem in report.rejected:
        log.warning("skipped %s", problem)
    log.info("ingest: %d new, %d updated%s", report.new, report.updated,
             f"; {report.stopped}" if report.stopped else "")


async def run(settings: Settings, engine: Engine) -> None:
    """Run the scheduler until SIGTERM or Ctrl-C; the message in flight is finished first."""
    global _runtime
    _runtime = rt = Runtime(settings, engine, ledger.lock_owner())
    loop = asyncio.get_running_loop()

    def stop() -> None:  # the ingest job runs in a thread: it has its own event
        rt.stop.set()
        rt.halt.set()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    # The job table is created here, race-safe, rather than by the job store's own start().
    jobstore = SQLAlchemyJobStore(engine=engine, metadata=MetaData())
    create_tables(engine, jobstore.jobs_t.metadata)
    scheduler = AsyncIOScheduler(
        jobstores={"default": jobstore}, timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    start = datetime.now(UTC)
    scheduler.add_job(f"{__name__}:dispatch_job", "interval", id="dispatch",
                      seconds=settings.dispatch_interval_seconds, replace_existing=True,
                      next_run_time=start)
    scheduler.add_job(f"{__name__}:ingest_job", "interval", id="ingest",
                      minutes=settings.ingest_interval_minutes, replace_existing=True,
                      next_run_time=start)
    scheduler.start()
    if open_mailbox(settings) is not None:
        scheduler.add_job(f"{__name__}:returns_job", "interval", id="returns",
                          minutes=settings.returns_interval_minutes, replace_existing=True,
                          next_run_time=start)
    elif scheduler.get_job("returns") is not None:  # configured once, not any more
        scheduler.remove_job("returns")
    log.info("scheduler started: dispatch every %gs, ingest every %g min",
             settings.dispatch_interval_seconds, settings.ingest_interval_minutes)
    await rt.stop.wait()
    # No new jobs; the running dispatch finishes its messages in flight. (Shutting down the
    # scheduler first would cancel that task mid-send.) The ingest job's thread sees ``halt``.
    scheduler.pause()
    if rt.active is not None:
        log.info("stopping: finishing the messages in flight")
    running = [task for task in (rt.active, rt.ingesting) if task is not None]
    if running:
        await asyncio.wait(running)
    scheduler.shutdown(wait=False)
    _runtime = None
