"""Dispatching under a lease, and ``newsletter run``: APScheduler 3 with its jobs in our database.

Two jobs: ingest the configured sources every ``ingest_interval_minutes``, and a dispatch tick
every ``dispatch_interval_seconds`` that sends whatever is due (``due.py``). A tick works only
while it holds the ``dispatch`` lease in the database, so any number of ``newsletter run`` (and
``newsletter send``) processes on one database never dispatch at the same time; the ledger's
unique keys would stop a double send even if they did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import AsyncIterator, Callable

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, MetaData

from . import catalog, ledger, store
from .deliver import Dispatcher, Pipeline, Policy, SendReport
from .due import due_edition
from .errors import NewsletterError
from .models import Subscriber
from .select import edition_for
from .settings import Settings
from .subscribers import load_subscribers
from .transport import make_transport

log = logging.getLogger("newsletter")
LEASE = timedelta(seconds=60)


class Busy(NewsletterError):
    """Another process holds the dispatch lease."""


@contextlib.asynccontextmanager
async def lease(engine: Engine, name: str, owner: str) -> AsyncIterator[None]:
    """Hold ``name`` for the block, renewing it in the background; raise Busy if taken."""
    held, holder = ledger.acquire(engine, name, owner, LEASE)
    if not held:
        raise Busy(f"another process ({holder or 'unknown'}) is dispatching on this database; "
                   "it will send what is due (see `newsletter status`)")
    if name == "dispatch":
        orphans = ledger.orphans_to_uncertain(engine)  # we are the only dispatcher now
        if orphans:
            log.warning("%d deliveries were cut off by a stopped process: marked uncertain "
                        "(see `newsletter status`)", orphans)

    async def renew() -> None:
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            ledger.acquire(engine, name, owner, LEASE)

    renewer = asyncio.ensure_future(renew())
    try:
        yield
    finally:
        renewer.cancel()
        ledger.release(engine, name, owner)


def ingest_exclusive(engine: Engine, paths: list[Path | str], now: datetime, owner: str,
                     progress: Callable[..., object] | None = None,
                     wait: float = 60.0) -> catalog.IngestReport:
    """Ingest under the ``ingest`` lease: two processes never insert the same papers at once."""
    deadline = time.monotonic() + wait
    while not (taken := ledger.acquire(engine, "ingest", owner, LEASE))[0]:
        if time.monotonic() > deadline:
            raise Busy(f"another process ({taken[1]}) has been ingesting for {wait:g}s")
        time.sleep(0.2)
    try:
        return catalog.ingest(engine, paths, now, progress=progress)
    finally:
        ledger.release(engine, "ingest", owner)


async def dispatch(engine: Engine, settings: Settings, now: datetime, *, owner: str,
                   subscribers: list[Subscriber] | None = None, manual: bool = False,
                   dry_run: bool = False, stop: asyncio.Event | None = None,
                   progress: Callable[[int], Callable[[], None]] | None = None) -> SendReport:
    """Send what is due at ``now`` (``manual``: every subscriber's current edition)."""
    async with lease(engine, "dispatch", owner):
        subs = store.load_subscribers(engine) if subscribers is None else subscribers
        stale = timedelta(hours=settings.stale_after_hours)
        editions = {}
        for sub in subs:
            edition = edition_for(sub, now) if manual else due_edition(sub, now, stale)
            if edition and sub.id is not None:
                editions[sub.id] = (sub, edition)
        transport = make_transport(settings)
        if not editions or store.count_papers(engine) == 0:
            # An empty catalog would mark every digest "nothing new" for the whole edition.
            return SendReport(transport.describe(), dry_run)
        dispatcher = Dispatcher(engine, Pipeline.build(engine, settings, now), transport,
                                Policy.from_settings(settings), dry_run=dry_run, stop=stop,
                                progress=progress(len(editions)) if progress else None)
        return await dispatcher.run(editions)


# -- newsletter run ---------------------------------------------------------------------------


@dataclass
class Runtime:
    """What the scheduled jobs need; APScheduler stores the jobs by name, not their state."""

    settings: Settings
    engine: Engine
    owner: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], datetime] = store.utcnow
    active: asyncio.Task[None] | None = None


_runtime: Runtime | None = None


async def dispatch_job() -> None:
    rt = _runtime
    if rt is None or rt.stop.is_set():
        return
    rt.active = asyncio.current_task()  # type: ignore[assignment]
    try:
        found, problems = load_subscribers(rt.settings.subscribers_dir)
        for problem in problems:
            log.warning("skipped %s", problem)
        store.sync_subscribers(rt.engine, found)
        report = await dispatch(rt.engine, rt.settings, rt.clock(), owner=rt.owner, stop=rt.stop)
    except Busy as exc:
        log.info("standing by: %s", exc)
        return
    except NewsletterError as exc:
        log.error("dispatch: %s", exc)
        return
    finally:
        rt.active = None
    if report.sent or report.failed or report.uncertain or report.retrying:
        log.info("dispatch: sent %d, nothing new for %d, failed %d, uncertain %d, retrying %d",
                 len(report.sent), len(report.empty), len(report.failed),
                 len(report.uncertain), len(report.retrying))


def ingest_job() -> None:
    rt = _runtime
    if rt is None or rt.stop.is_set():
        return
    try:
        report = ingest_exclusive(rt.engine, list(rt.settings.sources), rt.clock(),
                                  rt.owner, wait=0)
    except Busy:
        return  # another scheduler is ingesting the same sources right now
    for problem in report.rejected:
        log.warning("skipped %s", problem)
    log.info("ingest: %d new, %d updated", report.new, report.updated)


async def run(settings: Settings, engine: Engine) -> None:
    """Run the scheduler until SIGTERM or Ctrl-C; the message in flight is finished first."""
    global _runtime
    _runtime = rt = Runtime(settings, engine, ledger.lock_owner())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, rt.stop.set)
    # The job table is created here, race-safe, rather than by the job store's own start().
    jobstore = SQLAlchemyJobStore(engine=engine, metadata=MetaData())
    store.create_tables(engine, jobstore.jobs_t.metadata)
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
    log.info("scheduler started: dispatch every %gs, ingest every %g min",
             settings.dispatch_interval_seconds, settings.ingest_interval_minutes)
    await rt.stop.wait()
    scheduler.shutdown(wait=False)
    if rt.active is not None:
        log.info("stopping: finishing the messages in flight")
        await asyncio.wait([rt.active])
    _runtime = None
