"""One send run: compose each due digest, hand it to the transport, record the outcome.

Everything that is the same for every subscriber (the ranking index, the compiled and inlined
templates, the signing key) is built once in :class:`Pipeline`. The :class:`Dispatcher` then
works through the due digests with a bounded number of workers: a temporary failure goes back
in the queue after an exponential backoff, a permanent one is recorded and the run goes on, a
lost reply to DATA is recorded as uncertain, and a stop request lets each worker finish the
message in its hands and leaves the rest for the next run.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Collection

from sqlalchemy import Engine

from . import ledger, store
from .errors import ConfigError, SendError
from .faults import backoff, classify
from .message import Letterhead
from .models import Digest, Outgoing, Paper, RenderedDigest, Subscriber, SubscriberLinks
from .rank import Ranker, build_ranker
from .render import Renderer
from .select import build_digest
from .settings import Settings
from .throttle import Breaker, TokenBucket
from .tokens import click_url, links_for
from .transport import Transport


@dataclass(frozen=True)
class Composed:
    digest: Digest
    links: SubscriberLinks
    rendered: RenderedDigest
    message: Outgoing


@dataclass
class Pipeline:
    """The per-run state shared by every subscriber's digest."""

    settings: Settings
    ranker: Ranker
    renderer: Renderer
    secret: str
    now: datetime
    letterhead: Letterhead = field(init=False)

    def __post_init__(self) -> None:
        self.letterhead = Letterhead(
            from_address=self.settings.from_address, from_name=self.settings.from_name,
            list_id=self.settings.list_id_value, now=self.now)

    @classmethod
    def build(cls, engine: Engine, settings: Settings, now: datetime) -> Pipeline:
        secret = (settings.secret_key.get_secret_value() if settings.secret_key
                  else store.secret_key(engine))
        renderer = Renderer(settings.templates_dir, base_url=settings.base_url,
                            site_name=settings.from_name)
        candidates = store.load_papers(engine, since=now - timedelta(days=settings.window_days))
        ranker = build_ranker(candidates, engine, semantic=settings.semantic != "off")
        return cls(settings, ranker, renderer, secret, now)

    def links(self, email: str) -> SubscriberLinks:
        return links_for(email, secret=self.secret, base_url=self.settings.base_url,
                         mailto=self.settings.unsubscribe_address)

    def _tracked(self, subscriber: Subscriber) -> Callable[[Paper], str] | None:
        if not self.settings.click_tracking or subscriber.id is None:
            return None
        sub_id, secret, base = subscriber.id, self.secret, self.settings.base_url
        return lambda paper: click_url(secret, base, sub_id, paper.id)

    def compose(self, subscriber: Subscriber, sent: Collection[str],
                edition: str) -> Composed | None:
        """The exact message ``send`` would send, or None when nothing is relevant and new."""
        digest = build_digest(subscriber, self.ranker, sent, edition, self.now)
        if digest is None:
            return None
        links = self.links(subscriber.email)
        rendered = self.renderer.render(digest, links, self._tracked(subscriber))
        return Composed(digest, links, rendered, self.letterhead.build(digest, rendered, links))


@dataclass(frozen=True)
class Policy:
    concurrency: int = 4
    rate: float = 0.0
    max_attempts: int = 5
    retry_base: float = 30.0
    retry_cap: float = 1800.0
    breaker_threshold: int = 10
    breaker_pause: float = 60.0
    suppress_after: int = 3

    @classmethod
    def from_settings(cls, s: Settings) -> Policy:
        return cls(s.smtp_connections, s.rate_limit, s.max_attempts, s.retry_base_seconds,
                   s.retry_cap_seconds, s.breaker_threshold, s.breaker_pause_seconds,
                   s.suppress_after)


@dataclass
class SendReport:
    destination: str
    dry_run: bool = False
    sent: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    already: int = 0
    waiting: int = 0  # retries whose time has not come
    failed: list[tuple[str, str]] = field(default_factory=list)
    uncertain: list[tuple[str, str]] = field(default_factory=list)
    retrying: list[tuple[str, str]] = field(default_factory=list)  # left for the next run
    suppressed: list[str] = field(default_factory=list)
    pauses: int = 0
    stopped: int = 0  # due digests not started because a stop was requested
    planned: list[tuple[str, int, str]] = field(default_factory=list)  # dry run


@dataclass
class Job:
    subscriber: Subscriber
    edition: str
    composed: Composed | None = None


class Dispatcher:
    def __init__(self, engine: Engine, pipeline: Pipeline, transport: Transport,
                 policy: Policy, *, dry_run: bool = False, stop: asyncio.Event | None = None,
                 progress: Callable[[], None] | None = None,
                 rng: random.Random | None = None) -> None:
        self.engine, self.pipeline, self.transport, self.policy = engine, pipeline, transport, policy
        self.report = SendReport(transport.describe(), dry_run)
        self.stop = stop or asyncio.Event()
        self.progress = progress
        self.rng = rng or random.Random()
        self.bucket = TokenBucket(policy.rate, burst=max(1, policy.concurrency))
        self.breaker = Breaker(policy.breaker_threshold, policy.breaker_pause)
        self.sent: dict[int, set[str]] = {}
        self.delayed: dict[int, tuple[Job, asyncio.TimerHandle]] = {}  # retries not yet due
        self.fatal: ConfigError | None = None

    async def run(self, editions: dict[int, tuple[Subscriber, str]]) -> SendReport:
        """Send each subscriber the given edition, unless the ledger has it as handled."""
        jobs = self._eligible(editions)
        self.sent = ledger.sent_papers_by_subscriber(self.engine, [j.subscriber.id for j in jobs
                                                                   if j.subscriber.id])
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self.open = len(jobs)
        for job in jobs:
            self.queue.put_nowait(job)
        async with self.transport:
            if not self.report.dry_run and jobs:
                await self.transport.check()  # wrong host or password: stop before any claim
            watcher = asyncio.ensure_future(self._on_stop())
            workers = [self._worker() for _ in range(self.policy.concurrency)]
            if not jobs:
                self._wake_all()
            await asyncio.gather(*workers)
            watcher.cancel()
        for job, timer in self.delayed.values():  # stopped while waiting: the ledger keeps them
            timer.cancel()
            self.report.retrying.append((job.subscriber.email, "stopped before the retry"))
        if self.stop.is_set():
            self.report.stopped = self.open - len(self.delayed)
        self.report.pauses = self.breaker.tripped_count
        if self.fatal:
            raise self.fatal
        return self.report

    def _eligible(self, editions: dict[int, tuple[Subscriber, str]]) -> list[Job]:
        states = ledger.states_for(self.engine, {i: e for i, (_, e) in editions.items()})
        now = store.utcnow()
        jobs = []
        for sub_id, (sub, edition) in editions.items():
            state, next_at = states.get(sub_id, (None, None))
            if state in ledger.DONE or state == "sending":
                self.report.already += 1
            elif state == ledger.RETRYING and next_at and next_at > now:
                self.report.waiting += 1
            else:
                jobs.append(Job(sub, edition))
        return jobs

    async def _on_stop(self) -> None:
        await self.stop.wait()
        self._wake_all()

    def _wake_all(self) -> None:
        for _ in range(self.policy.concurrency):
            self.queue.put_nowait(None)

    def _finish(self) -> None:
        self.open -= 1
        if self.progress:
            self.progress()
        if self.open == 0:
            self._wake_all()

    async def _worker(self) -> None:
        while True:
            job = await self.queue.get()
            if job is None or self.stop.is_set():
                return
            if await self._attempt(job):
                job.composed = None  # a finished digest's 100 KB must not live for the whole run
                self._finish()

    async def _attempt(self, job: Job) -> bool:
        """One try at one job; False when it went back in the queue for a retry."""
        sub = job.subscriber
        assert sub.id is not None
        if job.composed is None:
            try:
                job.composed = self.pipeline.compose(sub, self.sent.get(sub.id, set()), job.edition)
            except Exception as exc:  # a bug in one digest must not stop the others
                self._not_built(job, f"could not build the digest: {exc!r}")
                return True
            if job.composed is None:
                if not self.report.dry_run:
                    ledger.mark_skipped(self.engine, sub.id, job.edition)
                self.report.empty.append(sub.email)
                return True
        composed = job.composed
        if self.report.dry_run:
            self.report.planned.append((sub.email, len(composed.digest.items),
                                        composed.rendered.subject))
            return True
        claim = ledger.begin(self.engine, sub.id, job.edition, len(composed.digest.items))
        if claim is None:
            self.report.already += 1  # another dispatcher took it meanwhile
            return True
        delivery_id, attempts = claim
        await self.breaker.wait()
        await self.bucket.acquire()
        try:
            await self.transport.send(composed.message)
        except SendError as exc:
            return self._failed(job, delivery_id, attempts, exc)
        except ConfigError as exc:  # our own set-up, not this address: stop, keep it due
            ledger.mark_retrying(self.engine, delivery_id, str(exc), store.utcnow())
            self.fatal = self.fatal or exc
            self.stop.set()
            return True
        self.breaker.record(ok=True)
        ledger.mark_sent(self.engine, delivery_id, sub.id, composed.message.message_id,
                         composed.digest.paper_ids)
        self.report.sent.append(sub.email)
        return True

    def _failed(self, job: Job, delivery_id: int, attempts: int, exc: SendError) -> bool:
        sub, verdict, error = job.subscriber, classify(exc), str(exc)
        assert sub.id is not None and job.composed is not None
        self.breaker.record(ok=verdict.kind == "permanent")  # a 550 is no sign of throttling
        if verdict.kind == "uncertain":
            ledger.mark_uncertain(self.engine, delivery_id, error, job.composed.message.message_id)
            self.report.uncertain.append((sub.email, error))
            return True
        if verdict.kind == "retry" and attempts < self.policy.max_attempts:
            delay = backoff(attempts, base=self.policy.retry_base, cap=self.policy.retry_cap,
                            rng=self.rng)
            ledger.mark_retrying(self.engine, delivery_id, error,
                                 store.utcnow() + timedelta(seconds=delay))
            if self.stop.is_set():
                self.report.retrying.append((sub.email, error))
                return True
            self.delayed[delivery_id] = (job, asyncio.get_running_loop().call_later(
                delay, self._requeue, delivery_id))
            return False
        if verdict.kind == "retry":
            error = f"gave up after {attempts} attempts: {error}"
        ledger.mark_failed(self.engine, delivery_id, error)
        self.report.failed.append((sub.email, error))
        if ledger.permanent_failures(self.engine, sub.id) >= self.policy.suppress_after:
            store.set_subscriber_status(self.engine, sub.email, "bounced")
            self.report.suppressed.append(sub.email)
        return True

    def _requeue(self, delivery_id: int) -> None:
        job, _ = self.delayed.pop(delivery_id)
        self.queue.put_nowait(job)

    def _not_built(self, job: Job, error: str) -> None:
        """Recorded as a retry due now, so the next run tries again (after a fix, say)."""
        sub = job.subscriber
        self.report.failed.append((sub.email, error))
        if self.report.dry_run or sub.id is None:
            return
        claim = ledger.begin(self.engine, sub.id, job.edition, 0)
        if claim:
            ledger.mark_retrying(self.engine, claim[0], error, store.utcnow())
