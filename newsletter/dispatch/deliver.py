"""One digest's way out: compose it, hand it to the transport, record the outcome.

Everything that is the same for every subscriber (the ranking index, the compiled and inlined
templates, the signing key) is built once in :class:`Pipeline`. :class:`Sender` handles one
claimed delivery (``worker.py`` feeds it): a temporary failure is recorded as ``retrying`` with
an exponential backoff (any worker takes it up again when due), a permanent one is recorded and
the run goes on, a lost reply to DATA is recorded as uncertain, never resent.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Collection, Iterable

from sqlalchemy import Engine

from newsletter.compose.message import Letterhead, Returns, make_address
from newsletter.compose.render import Renderer
from newsletter.compose.signing import DkimSigner
from newsletter.compose.tokens import click_url, links_for
from newsletter.delivery.faults import backoff, classify
from newsletter.delivery.throttle import Breaker, TokenBucket
from newsletter.delivery.transport import Transport
from newsletter.dispatch import ledger
from newsletter.dispatch.claims import RETRYING, Claim
from newsletter.dispatch.journal import Journal, Outcome
from newsletter.errors import ConfigError, SendError
from newsletter.models import (
    Digest,
    Outgoing,
    Paper,
    ReaderSignals,
    RenderedDigest,
    Subscriber,
    SubscriberLinks,
)
from newsletter.relevance.rank import Ranker, build_ranker
from newsletter.relevance.select import build_digest
from newsletter.relevance.shared import Shared, share
from newsletter.relevance.vectors import vectors_for
from newsletter.settings import Settings
from newsletter.store.catalog import load_papers, load_papers_by_id
from newsletter.store.engine import utcnow
from newsletter.store.rankings import forget_rankings, load_rankings, save_rankings
from newsletter.store.readers import signals_for
from newsletter.store.schema import secret_key

RANKINGS_KEPT = timedelta(days=1)  # stored topic rankings outlive a run, not a day


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
    _looked_up: set[str] = field(init=False, default_factory=set)
    _pruned: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.letterhead = Letterhead(
            from_address=self.settings.from_address, from_name=self.settings.from_name,
            list_id=self.settings.list_id_value, now=self.now,
            returns=returns_of(self.settings, self.secret, self.now))

    @classmethod
    def build(cls, engine: Engine, settings: Settings, now: datetime) -> Pipeline:
        secret = (settings.secret_key.get_secret_value() if settings.secret_key
                  else secret_key(engine))
        renderer = Renderer(settings.templates_dir, base_url=settings.base_url,
                            site_name=settings.from_name)
        candidates = load_papers(engine, since=now - timedelta(days=settings.window_days))
        ranker = build_ranker(candidates, engine, semantic=settings.semantic)
        return cls(settings, ranker, renderer, secret, now)

    def links(self, subscriber: Subscriber) -> SubscriberLinks:
        return links_for(subscriber, secret=self.secret, base_url=self.settings.base_url,
                         mailto=self.settings.unsubscribe_address)

    def _tracked(self, subscriber: Subscriber) -> Callable[[Paper], str] | None:
        if not self.settings.click_tracking or not subscriber.link_id:
            return None
        secret, base = self.secret, self.settings.base_url
        return lambda paper: click_url(secret, base, subscriber, paper.id)

    def rank_topics(self, engine: Engine, people: Iterable[Subscriber]) -> Shared:
        """Rank these subscribers' topics, each once across the run's processes: a topic
        another worker ranked is read from the store (``relevance.shared``)."""
        if not self._pruned:  # once a run: yesterday's catalog is not read again
            forget_rankings(engine, before=utcnow() - RANKINGS_KEPT)
            self._pruned = True
        topics = [topic for person in people for topic in (*person.topics, *person.exclude)]
        return share(self.ranker, topics,
                     load=lambda catalog, queries: load_rankings(engine, catalog, queries),
                     save=lambda catalog, made: save_rankings(engine, catalog, made, utcnow()))

    def readers(self, engine: Engine, ids: Collection[int]) -> dict[int, ReaderSignals]:
        """The feedback and own papers of these subscribers (those who gave any), one query,
        with the papers they liked or hid before this run's window made known to the model."""
        found = signals_for(engine, ids)
        if found:
            self.recall(engine, found.values())
        return found

    def recall(self, engine: Engine, signals: Iterable[ReaderSignals]) -> None:
        """Make the papers readers liked or hid before this run's window known to the reader
        model (their words still say what the reader likes). Each is looked up once a run, the
        batch's in one query."""
        vectors = vectors_for(self.ranker)
        wanted = {pid for s in signals for pid in (*s.liked, *s.hidden)
                  if pid not in self._looked_up and vectors.paper(pid) is None}
        self._looked_up.update(wanted)
        vectors.know(load_papers_by_id(engine, wanted))

    def compose(self, subscriber: Subscriber, sent: Collection[str],
                edition: str, reader: ReaderSignals | None = None) -> Composed | None:
        """The exact message ``send`` would send, or None when nothing is relevant and new.
        ``reader``: the subscriber's feedback and own papers (``store.readers.signals_for``)."""
        digest = build_digest(subscriber, self.ranker, sent, edition, self.now, reader=reader)
        if digest is None:
            return None
        links = self.links(subscriber)
        # within the byte budget: the digest may come back with fewer papers (those are sent)
        digest, rendered = self.renderer.fit(digest, links, self._tracked(subscriber))
        return Composed(digest, links, rendered, self.letterhead.build(digest, rendered, links))


def returns_of(settings: Settings, secret: str, now: datetime) -> Returns:
    """The headers and envelope that route what comes back, and the DKIM signer, once a run;
    ConfigError naming the setting when one cannot be used."""
    for setting, value in (("NEWSLETTER_REPLY_TO", settings.reply_to),
                           ("NEWSLETTER_BOUNCE_ADDRESS", settings.bounce_address)):
        try:
            if value:
                make_address(setting, "", value)
        except ValueError as exc:
            raise ConfigError(f"{setting}: {exc}") from None
    if settings.feedback_id and not settings.feedback_id.replace("-", "").replace(
            ".", "").replace("_", "").isalnum():
        raise ConfigError(f"NEWSLETTER_FEEDBACK_ID {settings.feedback_id!r}: use letters, "
                          "digits, '.', '-' and '_' only (it goes into a header)")
    signer = None
    if settings.dkim_key_file:
        if not settings.dkim_selector:
            raise ConfigError("NEWSLETTER_DKIM_KEY_FILE is set but NEWSLETTER_DKIM_SELECTOR is "
                              "not: set the selector the public key is published under")
        signer = DkimSigner.from_file(settings.dkim_key_file, selector=settings.dkim_selector,
                                      domain=settings.dkim_signing_domain, now=now)
    return Returns(reply_to=settings.reply_to, feedback_id=settings.feedback_id,
                   bounce_address=settings.bounce_address, secret=secret, signer=signer)


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
    sent: int = 0  # counts, not addresses: a run of 100,000 must not hold 100,000 strings
    empty: int = 0
    already: int = 0
    waiting: int = 0  # retries whose time has not come
    stale: int = 0  # skipped: due longer ago than NEWSLETTER_STALE_AFTER_HOURS
    failed: list[tuple[str, str]] = field(default_factory=list)
    uncertain: list[tuple[str, str]] = field(default_factory=list)
    retrying: list[tuple[str, str]] = field(default_factory=list)  # left for the next run
    suppressed: list[str] = field(default_factory=list)
    pauses: int = 0
    stopped: int = 0  # due digests not started because a stop was requested
    planned: list[tuple[str, int, str]] = field(default_factory=list)  # dry run
    by_helpers: dict[str, int] = field(default_factory=dict)  # outcomes of helper processes


@dataclass
class Job:
    claim: Claim
    subscriber: Subscriber
    sent: Collection[str]  # papers this person already has (within the window)
    reader: ReaderSignals | None = None  # their feedback and own papers, if any


class Sender:
    """Handles claimed deliveries, one coroutine per SMTP connection (``worker.py``)."""

    def __init__(self, engine: Engine, pipeline: Pipeline, transport: Transport,
                 policy: Policy, journal: Journal, report: SendReport, *,
                 stop: asyncio.Event, rng: random.Random | None = None) -> None:
        self.engine, self.pipeline, self.transport = engine, pipeline, transport
        self.policy, self.journal, self.report, self.stop = policy, journal, report, stop
        self.rng = rng or random.Random()
        self.bucket = TokenBucket(policy.rate, burst=max(1, policy.concurrency))
        self.breaker = Breaker(policy.breaker_threshold, policy.breaker_pause)
        self.retries: dict[int, tuple[str, str, datetime]] = {}  # id -> email, error, due
        self.fatal: ConfigError | None = None

    async def handle(self, job: Job) -> None:
        sub, claim = job.subscriber, job.claim
        try:
            composed = self.pipeline.compose(sub, job.sent, claim.edition, job.reader)
        except Exception as exc:  # a bug in one digest must not stop the others
            self._not_composed(claim, sub, exc)
            return
        if composed is None:
            self.journal.record(Outcome(claim.id, "skipped"))
            self.report.empty += 1
            return
        if not await self.journal.sending(claim, composed.message.message_id):
            self.report.already += 1  # our lease ran out and another worker has it
            return
        await self.breaker.wait()
        await self.bucket.acquire()
        try:
            await self.transport.send(composed.message)
        except SendError as exc:
            await self._failed(job, composed, exc)
            return
        except ConfigError as exc:  # our own set-up, not this address: stop, keep it due
            self.journal.record(Outcome(claim.id, RETRYING, error=str(exc),
                                        next_attempt_at=utcnow()))
            self.fatal = self.fatal or exc
            self.stop.set()
            return
        self.breaker.record(ok=True)
        self.journal.record(Outcome(
            claim.id, "sent", len(composed.digest.items), message_id=composed.message.message_id,
            subscriber_id=sub.id, paper_ids=tuple(composed.digest.paper_ids)))
        self.report.sent += 1

    def _not_composed(self, claim: Claim, sub: Subscriber, exc: Exception) -> None:
        """An attempt that never reached the relay: it counts, so a digest that can never be
        built ends ``failed`` after NEWSLETTER_MAX_ATTEMPTS instead of coming back forever."""
        attempts = claim.attempts + 1
        error = f"could not build the digest: {exc!r}"
        if attempts >= self.policy.max_attempts:
            error = f"gave up after {attempts} attempts: {error}"
            self.journal.record(Outcome(claim.id, "failed", error=error, tried=1))
        else:
            # Not retried in this run (it would fail the same way); a later run tries again.
            later = utcnow() + timedelta(seconds=self.policy.retry_cap)
            self.journal.record(Outcome(claim.id, RETRYING, error=error, next_attempt_at=later,
                                        tried=1))
        self.report.failed.append((sub.email, error))

    async def _failed(self, job: Job, composed: Composed, exc: SendError) -> None:
        sub, claim, verdict, error = job.subscriber, job.claim, classify(exc), str(exc)
        count, attempts = len(composed.digest.items), claim.attempts + 1
        self.breaker.record(ok=verdict.kind == "permanent")  # a 550 is no sign of throttling
        if verdict.kind == "uncertain":
            self.journal.record(Outcome(claim.id, "uncertain", count, error,
                                        composed.message.message_id))
            self.report.uncertain.append((sub.email, error))
            return
        if verdict.kind == "retry" and attempts < self.policy.max_attempts:
            due = utcnow() + timedelta(seconds=backoff(
                attempts, base=self.policy.retry_base, cap=self.policy.retry_cap, rng=self.rng))
            self.journal.record(Outcome(claim.id, RETRYING, count, error, next_attempt_at=due))
            self.retries[claim.id] = (sub.email, error, due)
            return
        if verdict.kind == "retry":  # failed for this edition, and nothing more
            error = f"gave up after {attempts} attempts: {error}"
        self.journal.record(Outcome(claim.id, "failed", count, error, hard_failure=verdict.hard))
        self.report.failed.append((sub.email, error))
        if verdict.hard and sub.id is not None:
            await self.journal.flush()
            if ledger.suppress_if_due(self.engine, sub.id, self.policy.suppress_after):
                self.report.suppressed.append(sub.email)


def rehearse(pipeline: Pipeline, engine: Engine,
             editions: dict[int, tuple[Subscriber, str, datetime]],
             report: SendReport) -> SendReport:
    """A dry run: compose what would go out, send and record nothing."""
    states = ledger.states_for(engine, {i: e for i, (_, e, _) in editions.items()})
    since = pipeline.now - timedelta(days=pipeline.settings.window_days)
    sent = ledger.sent_papers_by_subscriber(engine, list(editions), since=since)
    readers = pipeline.readers(engine, list(editions))
    for sub_id, (sub, edition, _) in editions.items():
        if states.get(sub_id, (None, None))[0] in ledger.HANDLED:
            report.already += 1
            continue
        composed = pipeline.compose(sub, sent.get(sub_id, set()), edition, readers.get(sub_id))
        if composed is None:
            report.empty += 1
        else:
            report.planned.append((sub.email, len(composed.digest.items),
                                   composed.rendered.subject))
    return report
