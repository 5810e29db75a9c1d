"""One send run: compose each due digest, hand it to the transport, record the outcome.

Everything that is the same for every subscriber (the ranking index, the compiled and inlined
templates, the signing key) is built once in :class:`Pipeline`; per subscriber there is only
selection, a template render, message assembly and the send. One subscriber's failure is
recorded in the ledger and the run goes on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Collection, Iterator

from sqlalchemy import Engine

from . import ledger, store
from .errors import ConfigError, SendError
from .message import build_message
from .models import Digest, Outgoing, RenderedDigest, Subscriber, SubscriberLinks
from .rank import Ranker
from .render import Renderer
from .select import build_digest, edition_for
from .settings import Settings
from .tokens import links_for
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

    @classmethod
    def build(cls, engine: Engine, settings: Settings, now: datetime) -> Pipeline:
        secret = (settings.secret_key.get_secret_value() if settings.secret_key
                  else store.secret_key(engine))
        renderer = Renderer(settings.templates_dir, base_url=settings.base_url,
                            site_name=settings.from_name)
        return cls(settings, Ranker(store.load_papers(engine)), renderer, secret, now)

    def links(self, email: str) -> SubscriberLinks:
        return links_for(email, secret=self.secret, base_url=self.settings.base_url,
                         mailto=self.settings.unsubscribe_address)

    def compose(self, subscriber: Subscriber, sent: Collection[str]) -> Composed | None:
        """The exact message ``send`` would send now, or None when nothing is relevant and new."""
        edition = edition_for(subscriber, self.now)
        digest = build_digest(subscriber, self.ranker, sent, edition, self.now)
        if digest is None:
            return None
        links = self.links(subscriber.email)
        rendered = self.renderer.render(digest, links)
        message = build_message(
            digest, rendered, links, from_address=self.settings.from_address,
            from_name=self.settings.from_name, list_id=self.settings.list_id_value, now=self.now)
        return Composed(digest, links, rendered, message)


@dataclass
class SendReport:
    destination: str
    dry_run: bool = False
    sent: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    planned: list[tuple[str, int, str]] = field(default_factory=list)  # dry run: who, papers, subject


async def send_digests(engine: Engine, pipeline: Pipeline, subscribers: list[Subscriber],
                       transport: Transport, *, dry_run: bool = False, concurrency: int = 4,
                       progress: Callable[[], None] | None = None) -> SendReport:
    """Send every subscriber's current edition that the ledger does not mark as handled."""
    report = SendReport(transport.describe(), dry_run)
    editions = {sub.id: edition_for(sub, pipeline.now) for sub in subscribers if sub.id}
    states = ledger.states_for(engine, editions)
    sent = ledger.sent_papers_by_subscriber(engine, list(editions))
    queue: Iterator[Subscriber] = iter(subscribers)

    async def worker() -> None:
        for sub in queue:  # a shared iterator: each subscriber is taken by one worker
            await _deliver_one(engine, pipeline, sub, states.get(sub.id), sent.get(sub.id, set()),
                               transport, report)
            if progress:
                progress()

    async with transport:
        if not dry_run:
            await transport.check()  # wrong host or password: stop before any delivery begins
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return report


async def _deliver_one(engine: Engine, pipeline: Pipeline, sub: Subscriber, state: str | None,
                       sent: set[str], transport: Transport, report: SendReport) -> None:
    assert sub.id is not None
    if state in ledger.FINAL:
        report.already += 1
        return
    if state == ledger.UNCERTAIN:
        report.uncertain.append(sub.email)
        return
    edition = edition_for(sub, pipeline.now)
    try:
        composed = pipeline.compose(sub, sent)
    except Exception as exc:  # one bad digest must not stop the others: record and go on
        _record_failure(engine, sub, edition, f"could not build the digest: {exc!r}", report)
        return
    if report.dry_run:
        if composed is None:
            report.empty.append(sub.email)
        else:
            report.planned.append((sub.email, len(composed.digest.items),
                                   composed.rendered.subject))
        return
    if composed is None:
        ledger.mark_skipped(engine, sub.id, edition)
        report.empty.append(sub.email)
        return
    delivery_id = ledger.begin(engine, sub.id, edition, len(composed.digest.items))
    if delivery_id is None:
        report.already += 1  # another run took it meanwhile
        return
    try:
        await transport.send(composed.message)
    except SendError as exc:
        ledger.mark_failed(engine, delivery_id, str(exc), permanent=exc.permanent)
        report.failed.append((sub.email, str(exc)))
        return
    except ConfigError as exc:  # our own set-up, not this address: leave it for the next run
        ledger.mark_failed(engine, delivery_id, str(exc), permanent=False)
        raise
    ledger.mark_sent(engine, delivery_id, sub.id, composed.message.message_id,
                     composed.digest.paper_ids)
    report.sent.append(sub.email)


def _record_failure(engine: Engine, sub: Subscriber, edition: str, error: str,
                    report: SendReport) -> None:
    report.failed.append((sub.email, error))
    if report.dry_run or sub.id is None:
        return
    delivery_id = ledger.begin(engine, sub.id, edition, 0)
    if delivery_id is not None:
        ledger.mark_failed(engine, delivery_id, error, permanent=False)
