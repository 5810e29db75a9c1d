"""A waiting worker outlives its PostgreSQL connections being cut (a restart, a reset by a
firewall): the pool tests each connection before use and lost ones are retried with backoff."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest
from commands import process_env, start
from databases import _postgres_schema
from paths import ROOT
from smtp_server import SmtpServer
from sqlalchemy import create_engine, text

from newsletter.catalog import ingest
from newsletter.dispatch.schedule import plan
from newsletter.models import Subscriber
from newsletter.settings import Settings
from newsletter.store.engine import connect, utcnow
from newsletter.store.subscribers import sync_subscribers

APP = "newsletter_idle_worker_test"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from _postgres_schema()


def cut_connections(url: str) -> int:
    """What a server restart does to a client: every connection of the worker is terminated."""
    admin = create_engine(url)
    with admin.begin() as conn:
        cut = conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = :app"), {"app": APP}).all()
    admin.dispose()
    return len(cut)


def test_an_idle_worker_survives_its_connections_being_cut_and_sends_what_comes_next(
        tmp_path: Path, postgres_url: str,
        smtp_server_factory: Callable[..., SmtpServer]) -> None:
    engine = connect(postgres_url)
    ingest.ingest(engine, [ROOT / "seeds"], utcnow())
    sync_subscribers(engine, [Subscriber(email=f"p{i}@example.org", name="",
                                         topics=("neural networks",)) for i in range(5)])
    server = smtp_server_factory()
    env = process_env(tmp_path, **server.env(),
                    NEWSLETTER_DATABASE_URL=f"{postgres_url}&application_name={APP}")
    worker = start(env, "worker")
    try:
        assert worker.stderr is not None
        while "Worker started" not in worker.stderr.readline():  # past preflight warnings
            assert worker.poll() is None, worker.communicate()
        deadline = time.monotonic() + 30
        while cut_connections(postgres_url) == 0:  # once it holds one, cut them all
            assert time.monotonic() < deadline, "the worker never connected"
            time.sleep(0.1)
        time.sleep(1)  # a few polls on the cut connection
        assert worker.poll() is None, worker.communicate()
        settings = Settings(_env_file=None, database_url=postgres_url,
                            secret_key="x" * 16)
        assert plan(engine, settings, utcnow(), manual=True).new == 5
        assert server.wait_for(lambda s: len(s.messages) == 5, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert Counter(server.recipients()) == {f"p{i}@example.org": 1 for i in range(5)}
    engine.dispose()
