"""One ingest at a time: the catalog is read under a named lease, renewed while it runs.

Two processes merging the same papers at once would insert the same rows twice; the lease
(``ledger.acquire``) keeps the second one waiting. It is renewed every third of its length, so
a source that takes longer than the lease (a slow server, within its deadline) does not let a
second ingest in beside it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.catalog import ingest
from newsletter.catalog.sources.fetch import STOP_POLL_SECONDS, FetchLimits
from newsletter.dispatch import ledger
from newsletter.errors import NewsletterError
from newsletter.settings import Settings

log = logging.getLogger("newsletter")


class Busy(NewsletterError):
    """Another process holds the lease (ingesting the same sources)."""


def ingest_exclusive(engine: Engine, settings: Settings, paths: list[Path | str], now: datetime,
                     owner: str, progress: Callable[..., object] | None = None,
                     wait: float = 60.0,
                     stop: threading.Event | None = None) -> ingest.IngestReport:
    """Ingest under the ``ingest`` lease, renewed while it runs: two processes never insert the
    same papers at once, however long one source takes. ``stop`` (set from another thread, as
    SIGTERM does under `newsletter run`) ends it at once; so does losing the lease."""
    lease = timedelta(seconds=settings.worker_lease_seconds)
    deadline = time.monotonic() + wait
    while not (taken := ledger.acquire(engine, "ingest", owner, lease))[0]:
        if time.monotonic() > deadline:
            raise Busy(f"another process ({taken[1]}) has been ingesting for {wait:g}s")
        time.sleep(0.2)
    halt, done = threading.Event(), threading.Event()
    keeper = threading.Thread(target=_keep_lease, daemon=True,
                              args=(engine, owner, lease, stop or threading.Event(), halt, done))
    keeper.start()
    try:
        limits = FetchLimits(settings.fetch_timeout_seconds, settings.fetch_deadline_seconds)
        return ingest.ingest(engine, paths, now, progress=progress, limits=limits, stop=halt)
    finally:
        done.set()
        keeper.join()
        ledger.release(engine, "ingest", owner)


def _keep_lease(engine: Engine, owner: str, lease: timedelta, stop: threading.Event,
                halt: threading.Event, done: threading.Event) -> None:
    """Renew the ingest lease every third of its length until ``done``; pass a stop request
    on to the ingest (``halt``), and halt it too when the lease was lost."""
    renew_at = time.monotonic() + lease.total_seconds() / 3
    while not done.wait(STOP_POLL_SECONDS):
        if stop.is_set():
            halt.set()
        if time.monotonic() >= renew_at:
            renew_at = time.monotonic() + lease.total_seconds() / 3
            try:
                held, holder = ledger.acquire(engine, "ingest", owner, lease)
            except SQLAlchemyError as exc:  # the next renewal may get through
                log.warning("could not renew the ingest lease: %s", exc)
                continue
            if not held:
                log.error("ingest: another process (%s) took the lease; stopping", holder)
                halt.set()
