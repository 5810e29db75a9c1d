"""Worker processes sharing one queue: on PostgreSQL, killed midway, helpers of `send`, and a
long-lived worker that serves what is planned after it started. Real processes, a real SMTP
server, a real database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pytest
from databases import _postgres_schema
from paths import ROOT
from smtp_server import SmtpServer
from sqlalchemy import Engine, select

from newsletter.catalog import ingest
from newsletter.dispatch import claims
from newsletter.dispatch.schedule import dispatch, plan
from newsletter.models import Subscriber
from newsletter.settings import Settings
from newsletter.store import schema
from newsletter.store.engine import connect, utcnow
from newsletter.store.subscribers import sync_subscribers

MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.MULTILINE | re.IGNORECASE)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema()


def catalog_with_people(url: str, n: int) -> Engine:
    engine = connect(url)
    ingest.ingest(engine, [ROOT / "seeds"], utcnow())
    sync_subscribers(engine, [
        Subscriber(email=f"p{i:05d}@example.org", name=f"Person {i}",
                   topics=("neural networks",), max_papers=3) for i in range(n)])
    return engine


def worker_env(url: str, server: SmtpServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NEWSLETTER_") or k == "NEWSLETTER_SEMANTIC"}
    env.update(server.env(), NEWSLETTER_DATABASE_URL=url, NEWSLETTER_SECRET_KEY="s" * 16, **extra)
    return env


def ledger_rows(engine: Engine) -> list[tuple[str, str, str | None]]:
    query = (select(schema.subscribers.c.email, schema.deliveries.c.state,
                    schema.deliveries.c.message_id)
             .join(schema.subscribers, schema.subscribers.c.id == schema.deliveries.c.subscriber_id))
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def test_four_workers_on_postgresql_one_killed_midway_give_everyone_exactly_one_digest(
        postgres_url: str, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    people = 5000
    engine = catalog_with_people(postgres_url, people)
    server = smtp_server_factory()
    settings = Settings(database_url=postgres_url, secret_key="s" * 16)
    assert plan(engine, settings, utcnow(), manual=True).new == people
    env = worker_env(postgres_url, server, NEWSLETTER_CLAIM_BATCH="50",
                     NEWSLETTER_SMTP_CONNECTIONS="2", NEWSLETTER_WORKER_LEASE_SECONDS="5")
    command = [sys.executable, "-m", "newsletter", "worker", "--drain", "--quiet"]
    workers = [subprocess.Popen(command, env=env, stderr=subprocess.PIPE) for _ in range(4)]
    try:
        assert server.wait_for(lambda s: len(s.messages) >= 1500, timeout=240)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        assert len(server.messages) < people - 500, "the kill came too late to test anything"
        for survivor in workers[1:]:
            _, errors = survivor.communicate(timeout=400)
            assert survivor.returncode == 0, errors
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()

    received = Counter(server.recipients())
    sent_ids = Counter(m.group(1).decode() for message in server.messages
                       if (m := MESSAGE_ID.search(message.original_content)))
    rows = ledger_rows(engine)
    by_state = Counter(state for _, state, _ in rows)
    uncertain = {email for email, state, _ in rows if state == "uncertain"}
    assert len(rows) == people and set(by_state) <= {"sent", "uncertain"}, by_state
    assert len(uncertain) <= 2  # the killed worker's two connections at most
    for email, state, message_id in rows:
        if state == "sent":  # the ledger says sent: the server has exactly that message
            assert received[email] == 1 and sent_ids[message_id] == 1, email
        else:
            assert received[email] <= 1, email
    assert sum(received.values()) == by_state["sent"] + sum(received[e] for e in uncertain)


def test_send_with_two_workers_shares_the_run_with_a_helper_process(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    catalog_with_people(url, 0)
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "list.toml").write_text("".join(
        f'[[subscriber]]\nemail = "p{i:05d}@example.org"\ntopics = ["neural networks"]\n'
        f'max_papers = 3\n\n' for i in range(400)))
    server = smtp_server_factory(data_delay=0.002)
    env = worker_env(url, server, NEWSLETTER_SUBSCRIBERS_DIR=str(folder),
                     NEWSLETTER_CLAIM_BATCH="20")
    done = subprocess.run([sys.executable, "-m", "newsletter", "send", "--workers", "2"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert Counter(server.recipients()) == Counter(
        {f"p{i:05d}@example.org": 1 for i in range(400)})
    helped = re.search(r"Sent (\d+) digests .* \((\d+) of them by helper processes\)",
                       " ".join(done.stdout.split()))
    assert helped and helped.group(1) == "400" and int(helped.group(2)) > 0, done.stdout


def test_a_long_lived_worker_sends_what_is_planned_after_it_started_and_stops_on_sigterm(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    engine = catalog_with_people(url, 30)
    server = smtp_server_factory()
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "worker"],
                            env=worker_env(url, server), stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        # the preflight's warnings come first
        assert any("Worker started" in proc.stderr.readline() for _ in range(10))
        assert not server.wait_for(lambda s: len(s.messages) > 0, timeout=1.0)  # nothing queued
        settings = Settings(database_url=url, secret_key="s" * 16)
        plan(engine, settings, utcnow(), manual=True)
        assert server.wait_for(lambda s: len(s.messages) == 30, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert claims.unfinished(engine) == (0, 0)
    assert Counter(state for _, state, _ in ledger_rows(engine)) == {"sent": 30}


def test_a_worker_holds_at_most_two_batches_so_memory_does_not_grow_with_the_queue(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    engine = catalog_with_people(url, 300)
    server = smtp_server_factory(data_delay=0.002)
    settings = Settings(database_url=url, secret_key="s" * 16, claim_batch=10, smtp_connections=2,
                        smtp_host=server.host, smtp_port=server.port, smtp_security="none")
    held = select(schema.deliveries.c.id).where(schema.deliveries.c.claimed_by.is_not(None))

    async def send_and_watch() -> int:
        task = asyncio.create_task(dispatch(engine, settings, utcnow(),
                                            owner=claims.lock_owner(), manual=True))
        most = 0
        while not task.done():
            with engine.connect() as conn:
                most = max(most, len(conn.execute(held).all()))
            await asyncio.sleep(0.01)
        await task
        return most
    most = asyncio.run(send_and_watch())
    # A batch queued, the next being queued, and per connection a message and an outcome
    # on its way to the ledger: never the whole queue of 300.
    assert 0 < most <= 2 * 10 + 2 * 2
    assert len(server.messages) == 300
