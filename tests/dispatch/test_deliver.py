"""The sender's and the worker's contract (deliver.py, worker.py), against a real SMTP server:
what a worker takes into a batch, what it composes and sends, what it records after each
reply, and when its run ends."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from paths import ROOT
from smtp_server import DROP, Rule, SmtpServer
from sqlalchemy import Engine, func, select, update

from newsletter.catalog import ingest
from newsletter.dispatch import ledger
from newsletter.dispatch.deliver import Pipeline, SendReport
from newsletter.dispatch.schedule import dispatch, plan
from newsletter.dispatch.worker import Worker
from newsletter.models import Subscriber
from newsletter.settings import Settings
from newsletter.store import schema
from newsletter.store.catalog import load_papers
from newsletter.store.engine import connect, utcnow
from newsletter.store.subscribers import (
    load_subscribers,
    set_subscriber_status,
    subscriber_status,
    sync_subscribers,
    unsubscribe,
)

REFUSED = "550 5.1.1 mailbox unavailable"
LATER = "451 4.3.0 try again later"


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    """The seed catalog, first seen now: what the ledger's sent_at times are measured against."""
    engine = connect(f"sqlite:///{tmp_path / 'n.db'}")
    ingest.ingest(engine, [ROOT / "seeds"], utcnow())
    return engine


def settings_for(server: SmtpServer, tmp_path: Path, **extra: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite:///{tmp_path / 'n.db'}", secret_key="s" * 16,
        smtp_host=server.host, smtp_port=server.port, smtp_security="none",
        retry_base_seconds=0.01, retry_cap_seconds=0.05, **extra)


def address(n: int) -> str:
    return f"p{n:04d}@example.org"


def people(n: int, **fields: object) -> list[Subscriber]:
    return [Subscriber(email=address(i), name=f"Person {i}", topics=("neural networks",),
                       max_papers=3, **fields) for i in range(n)]  # type: ignore[arg-type]


def send(engine: Engine, settings: Settings, now: datetime | None = None, *,
         stop: asyncio.Event | None = None, dry_run: bool = False) -> SendReport:
    """What `newsletter send` does: every subscriber's current edition, planned and sent."""
    return asyncio.run(dispatch(engine, settings, now or utcnow(), owner=ledger.lock_owner(),
                                manual=True, stop=stop, dry_run=dry_run))


def states_by_address(engine: Engine) -> dict[str, list[tuple[str, str | None]]]:
    query = (select(schema.subscribers.c.email, schema.deliveries.c.state,
                    schema.deliveries.c.last_error)
             .join(schema.deliveries, schema.deliveries.c.subscriber_id == schema.subscribers.c.id)
             .order_by(schema.deliveries.c.edition))
    found: dict[str, list[tuple[str, str | None]]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            found.setdefault(row.email, []).append((row.state, row.last_error))
    return found


def paper_urls(server: SmtpServer, recipient: str) -> list[list[str]]:
    """Per message to ``recipient``, in order: each paper's own link, as the reader sees it
    in the text part (the first link under each numbered title)."""
    found = []
    for received in server.messages:
        if received.rcpt_tos != (recipient,):
            continue
        text = received.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        urls, wanted = [], False
        for line in text.splitlines():
            if re.match(r"\d+\. ", line):
                wanted = True
            elif wanted and line.startswith("   http"):
                urls.append(line.strip())
                wanted = False
        found.append(urls)
    return found


# -- what a digest holds ---------------------------------------------------------------------


def test_a_digest_picks_only_from_papers_first_seen_inside_the_window(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    engine = connect(url)
    now = utcnow()
    ingest.ingest(engine, [ROOT / "seeds"], now)
    old = [p.id for p in load_papers(engine) if "graph" in p.title.lower()]
    with engine.begin() as conn:
        conn.execute(update(schema.papers).where(schema.papers.c.id.in_(old))
                     .values(first_seen_at=now - timedelta(days=30)))
    settings = Settings(database_url=url, secret_key="s", window_days=14)
    reader = Subscriber(email="a@example.org", name="A", topics=("GNN", "PINNs"), id=1,
                        link_id="reader-link1", link_key="k")
    composed = Pipeline.build(engine, settings, now).compose(reader, set(), "2026-11-23")
    assert composed is not None
    assert not set(composed.digest.paper_ids) & set(old)
    wide = Settings(database_url=url, secret_key="s", window_days=60)
    composed = Pipeline.build(engine, wide, now).compose(reader, set(), "2026-11-23")
    assert composed is not None and set(composed.digest.paper_ids) & set(old)


@pytest.mark.parametrize("frequency, gap_days", [("daily", 4), ("weekly", 7)])
def test_no_paper_reaches_a_reader_twice_across_a_gap_of_days(
        db: Engine, tmp_path: Path, smtp_server: SmtpServer, frequency: str,
        gap_days: int) -> None:
    # A weekly reader, or a daily one whose digests paused for a few days: what they were sent
    # days ago is still in the window the next digest picks from, and must stay out of it.
    sync_subscribers(db, people(1, frequency=frequency))
    settings = settings_for(smtp_server, tmp_path, window_days=14)
    first_day = utcnow()
    assert send(db, settings, first_day).sent == 1
    assert send(db, settings, first_day + timedelta(days=gap_days)).sent == 1
    first, later = paper_urls(smtp_server, address(0))
    assert len(first) == len(later) == 3
    assert not set(first) & set(later), "a paper was sent again"


def test_a_second_worker_takes_the_runs_topic_rankings_from_the_store(db: Engine) -> None:
    """Each topic is ranked once a run, whichever process meets it first; the others read it
    back and compose the same digests."""
    now = utcnow()
    settings = Settings(_env_file=None, database_url=str(db.url), secret_key="s" * 16)
    readers = [Subscriber(email=address(i), name="", topics=topics, id=i + 1,
                          link_id=f"reader-link{i}", link_key="k",
                          exclude=("reinforcement learning",) if i else ())
               for i, topics in enumerate([("GNN", "PINNs"), ("optimal transport",),
                                           ("meta-learning / few-shot learning", "gnns")])]
    first, second = Pipeline.build(db, settings, now), Pipeline.build(db, settings, now)
    made = first.rank_topics(db, readers)
    assert made.ranked == 5 and made.taken == 0  # "GNN" and "gnns": one understood query
    with db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(schema.topic_rankings)) == 5
    assert second.rank_topics(db, readers) == type(made)(ranked=0, taken=5)
    for reader in readers:
        mine, theirs = (p.compose(reader, set(), "2026-12-05") for p in (first, second))
        assert mine is not None and theirs is not None
        assert mine.digest == theirs.digest


# -- what a worker takes in ------------------------------------------------------------------


def test_a_digest_queued_before_its_reader_left_is_not_sent(
        db: Engine, tmp_path: Path, smtp_server: SmtpServer) -> None:
    sync_subscribers(db, people(4))
    settings = settings_for(smtp_server, tmp_path)
    assert plan(db, settings, utcnow(), manual=True).new == 4  # queued, by `run` or `send`
    unsubscribe(db, address(1))  # the one-click link, between planning and sending
    set_subscriber_status(db, address(2), "bounced")  # suppressed by another worker's run
    report = asyncio.run(Worker(db, settings, owner=ledger.lock_owner()).run())
    assert sorted(smtp_server.recipients()) == [address(0), address(3)]
    assert report.sent == 2
    rows = states_by_address(db)
    assert rows[address(1)] == rows[address(2)] == [("skipped", "no longer subscribed")]
    assert rows[address(0)] == rows[address(3)] == [("sent", None)]


# -- what a failure means ----------------------------------------------------------------------


def test_a_topic_that_cannot_be_ranked_fails_its_readers_digests_only(
        db: Engine, tmp_path: Path, smtp_server: SmtpServer,
        unrankable: Callable[[str], None]) -> None:
    """Topics are ranked per batch before the digests; a bug on one topic must still cost only
    the digests that need it (recorded, tried again by a later run), not the worker."""
    unrankable("PINNs")
    sync_subscribers(db, [Subscriber(email=address(0), name="", topics=("GNN",)),
                          Subscriber(email=address(1), name="", topics=("PINNs",))])
    report = send(db, settings_for(smtp_server, tmp_path))
    assert smtp_server.recipients() == [address(0)]
    assert {email for email, _ in report.failed} == {address(1)}  # its attempts, this run
    state, error = states_by_address(db)[address(1)][0]
    assert state == "failed" and "could not build the digest: ZeroDivisionError" in str(error)


def test_an_address_answering_451_forever_fails_after_max_attempts_and_the_run_ends(
        db: Engine, tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(rules=[Rule(LATER, at="rcpt", recipient=address(1))])
    sync_subscribers(db, people(3))
    settings = settings_for(server, tmp_path, max_attempts=3)
    runaway = asyncio.Event()

    async def send_and_watch() -> SendReport:
        # Only a guard, so that a run which never ends fails this test instead of hanging it:
        # it stops the run once the server saw more attempts than the setting allows.
        async def watch() -> None:
            while len(server.rejected) <= settings.max_attempts:
                await asyncio.sleep(0.01)
            runaway.set()
        watcher = asyncio.create_task(watch())
        try:
            return await dispatch(db, settings, utcnow(), owner=ledger.lock_owner(),
                                  manual=True, stop=runaway)
        finally:
            watcher.cancel()
    report = asyncio.run(send_and_watch())
    assert not runaway.is_set(), "the run went on retrying past NEWSLETTER_MAX_ATTEMPTS"
    assert server.rejected == [(address(1), LATER)] * 3
    (state, error), = states_by_address(db)[address(1)]
    assert state == "failed" and error is not None and LATER in error  # the server's reply
    assert [email for email, _ in report.failed] == [address(1)] and report.retrying == []
    assert sorted(server.recipients()) == [address(0), address(2)]
    assert send(db, settings).sent == 0 and len(server.rejected) == 3  # done for this edition


def test_permanent_failures_count_per_address_toward_suppression(
        db: Engine, tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    # p0001 refuses every digest; p0002 and p0003 refuse only their first one.
    server = smtp_server_factory(rules=[
        Rule(REFUSED, at="rcpt", recipient=address(1)),
        Rule(REFUSED, at="rcpt", recipient=address(2), times=1),
        Rule(REFUSED, at="rcpt", recipient=address(3), times=1)])
    sync_subscribers(db, people(5))
    settings = settings_for(server, tmp_path, suppress_after=3)
    day = utcnow()
    first = send(db, settings, day)  # three refusals, from three addresses
    assert sorted(email for email, _ in first.failed) == [address(1), address(2), address(3)]
    assert first.suppressed == []
    assert {s.email for s in load_subscribers(db)} == {address(i) for i in range(5)}
    assert send(db, settings, day + timedelta(days=1)).suppressed == []
    third = send(db, settings, day + timedelta(days=2))  # p0001's third refusal
    assert third.suppressed == [address(1)]
    assert subscriber_status(db, address(1)) == "bounced"
    assert Counter(server.recipients()) == {address(0): 3, address(4): 3,
                                            address(2): 2, address(3): 2}


@pytest.mark.parametrize("reply, paused", [(REFUSED, False), (LATER, True)])
def test_only_temporary_failures_pause_the_senders(
        db: Engine, tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer],
        reply: str, paused: bool) -> None:
    # A run of 550s is a list of dead addresses, not a throttling relay: no pause for them.
    server = smtp_server_factory(rules=[Rule(reply, at="rcpt", times=4)])  # once each
    sync_subscribers(db, people(4))
    settings = settings_for(server, tmp_path, max_attempts=1, smtp_connections=1,
                            breaker_threshold=2, breaker_pause_seconds=0.01)
    report = send(db, settings)
    assert len(report.failed) == 4 and server.messages == []
    assert (report.pauses > 0) == paused


def test_a_dry_run_lists_only_readers_the_edition_would_still_go_to(
        db: Engine, tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(rules=[Rule(REFUSED, at="rcpt", recipient=address(1)),
                                        Rule(DROP, at="data", recipient=address(2))])
    sync_subscribers(db, people(5))
    settings = settings_for(server, tmp_path)
    now = utcnow()
    plan(db, settings, now, subscribers=load_subscribers(db)[:4], manual=True)
    asyncio.run(Worker(db, settings, owner=ledger.lock_owner(), now=now).run())
    assert [state for _, ((state, _),) in sorted(states_by_address(db).items())] == [
        "sent", "failed", "uncertain", "sent"]
    rehearsal = send(db, settings, now, dry_run=True)
    assert [email for email, _, _ in rehearsal.planned] == [address(4)]  # never queued
    assert rehearsal.already == 4
    assert len(server.messages) == 2  # the dry run sent nothing
