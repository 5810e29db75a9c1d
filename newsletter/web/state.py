"""What every request shares: settings, database, signing key, page templates, and the digest
pipeline (the ranking index and the inlined email templates), built once and reused."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from newsletter.compose import tokens
from newsletter.dispatch import ledger
from newsletter.dispatch.deliver import Composed, Pipeline
from newsletter.errors import ConfigError
from newsletter.models import ReaderSignals, Subscriber
from newsletter.relevance.select import edition_for
from newsletter.settings import PROJECT_ROOT, Settings
from newsletter.store.catalog import count_papers
from newsletter.store.engine import utcnow
from newsletter.store.schema import secret_key
from newsletter.store.signups import Limits
from newsletter.subscriber_entry import WEEKDAYS
from newsletter.web.security import MIN_ADMIN_PASSWORD
from newsletter.web.throttle import LoginThrottle

T = TypeVar("T")
# The preview of a digest is the one `send` would compose now; rebuilding the ranking index
# per request would cost far more than the request itself, so it is kept this long (and
# rebuilt sooner when the catalog grows).
PIPELINE_TTL_SECONDS = 60.0
# Previews are ranked one at a time (the ranker's lock); one computing and a few queued is
# plenty, and each queued one holds a worker thread that unsubscribing may need.
PREVIEWS_AT_ONCE = 4
# A library upload costs seconds of CPU (pylatexenc reads every BibTeX field): two at a time.
LIBRARY_READS_AT_ONCE = 2


def page_environment(templates_dir: Path) -> jinja2.Environment:
    """Pages and sign-up emails: templates/web/ next to the digest templates, falling back to
    the project's own when a custom NEWSLETTER_TEMPLATES_DIR has none."""
    folder = templates_dir / "web"
    if not folder.is_dir():
        folder = PROJECT_ROOT / "templates" / "web"
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        # Everything .html is escaped (catalog text and form input are untrusted); the plain
        # text parts of the sign-up emails are not HTML, so they are not escaped.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


class Gate:
    """At most ``most`` of one costly kind of work at once. Past that a request is not queued
    (it would hold one of the worker threads every request shares): the caller is told there is
    no room and answers without the work. Entered on the event loop only, so no lock."""

    def __init__(self, most: int) -> None:
        self.most, self.inside = most, 0

    @contextmanager
    def entered(self) -> Iterator[bool]:
        """True, counted until the block ends, when there is room; False when full."""
        if self.inside >= self.most:
            yield False
            return
        self.inside += 1
        try:
            yield True
        finally:
            self.inside -= 1


class Web:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.secret = (settings.secret_key.get_secret_value() if settings.secret_key
                       else secret_key(engine))
        self.pages = page_environment(settings.templates_dir)
        self.secure_cookies = settings.base_url.startswith("https://")
        password = self.admin_password
        if password is not None and len(password) < MIN_ADMIN_PASSWORD:
            raise ConfigError(
                f"NEWSLETTER_ADMIN_PASSWORD is {len(password)} characters: use at least "
                f"{MIN_ADMIN_PASSWORD} (four random words make a good one), or unset it to turn "
                "the preview gallery off")
        self.login_throttle = LoginThrottle()
        self.signup_limits = Limits()
        self.previews, self.library_reads = Gate(PREVIEWS_AT_ONCE), Gate(LIBRARY_READS_AT_ONCE)
        self._lock = threading.Lock()  # the ranker's memos were written for one thread
        self._pipeline: Pipeline | None = None
        self._built = 0.0
        self._papers = -1

    @property
    def admin_password(self) -> str | None:
        value = self.settings.admin_password
        return value.get_secret_value() if value else None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Database and ranking work off the event loop, so one slow query stalls no one else."""
        return await run_in_threadpool(function, *args)

    def link(self, purpose: str, subscriber: Subscriber) -> str:
        """``subscriber``'s link for ``purpose``: the same as the one in their digests."""
        token = tokens.make(self.secret, purpose, subscriber.link_id, subscriber.link_key)
        return f"{self.settings.base_url}/{purpose}/{token}"

    def _fresh_pipeline(self) -> Pipeline:
        count = count_papers(self.engine)
        stale = time.monotonic() - self._built > PIPELINE_TTL_SECONDS
        if self._pipeline is None or stale or count != self._papers:
            self._pipeline = Pipeline.build(self.engine, self.settings, utcnow())
            self._built, self._papers = time.monotonic(), count
        return self._pipeline

    def next_digest(self, subscriber: Subscriber) -> Composed | None:
        """Exactly what `send` would send this person now (None: nothing relevant and new).
        ``subscriber`` may carry unsaved preferences: the preview of a draft."""
        sent: set[str] = set()
        reader: ReaderSignals | None = None  # what they told us: feedback, their own papers
        if subscriber.id is not None:
            sent = ledger.sent_papers_by_subscriber(self.engine, [subscriber.id]).get(
                subscriber.id, set())
        with self._lock:
            pipeline = self._fresh_pipeline()
            if subscriber.id is not None:
                reader = pipeline.readers(self.engine, [subscriber.id]).get(subscriber.id)
            return pipeline.compose(subscriber, sent,
                                    self._next_edition(subscriber, pipeline.now), reader)

    def _next_edition(self, subscriber: Subscriber, now: datetime) -> str:
        """The current edition, or the one after it when the ledger has the current one done:
        then that is what the next email will be (and its subject's date)."""
        edition = edition_for(subscriber, now)
        if subscriber.id is None:
            return edition
        state, _ = ledger.states_for(self.engine, {subscriber.id: edition}).get(
            subscriber.id, (None, None))
        if state in ledger.HANDLED:
            step = timedelta(days=7 if subscriber.frequency == "weekly" else 1)
            return edition_for(subscriber, now + step)
        return edition

    def now(self) -> datetime:
        return utcnow()


def schedule(subscriber: Subscriber) -> str:
    """When the digests come, in the person's own words and zone: "Daily at 07:00 (UTC)".
    The schedule rather than a date: whether today's edition is still to come depends on
    the scheduler's tick and the ledger, and a page must not promise what may not happen."""
    at = f"at {subscriber.send_time:%H:%M} ({subscriber.timezone.replace('_', ' ')})"
    if subscriber.frequency == "weekly":
        return f"Weekly on {WEEKDAYS[subscriber.weekday].capitalize()}s {at}"
    return f"Daily {at}"
