"""Dispatching against a real SMTP server: controlled clocks, misbehaving relays, killed and
doubled processes. No test sleeps to wait for a schedule."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Callable

import pytest
from paths import ROOT
from smtp_server import DROP, Rule, SmtpServer
from sqlalchemy import Engine, select

from newsletter.catalog import ingest
from newsletter.dispatch import ledger
from newsletter.dispatch.schedule import dispatch, plan
from newsletter.models import Subscriber
from newsletter.settings import Settings
from newsletter.store import schema
from newsletter.store.engine import connect, utcnow
from newsletter.store.subscribers import load_subscribers, sync_subscribers


def settings_for(server: SmtpServer | None, tmp_path: Path, **extra: object) -> Settings:
    smtp = {} if server is None else {"smtp_host": server.host, "smtp_port": server.port,
                                      "smtp_security": "none"}
    return Settings(database_url=f"sqlite:///{tmp_path / 'n.db'}", secret_key="s" * 16,
                    outbox_dir=tmp_path / "outbox", retry_base_seconds=0.01,
                    retry_cap_seconds=0.05, **smtp, **extra)  # type: ignore[arg-type]


def people(n: int, **fields: object) -> list[Subscriber]:
    return [Subscriber(email=f"p{i:04d}@example.org", name=f"Person {i}",
                       topics=("neural networks",), max_papers=3, **fields)  # type: ignore[arg-type]
            for i in range(n)]


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    engine = connect(f"sqlite:///{tmp_path / 'n.db'}")
    ingest.ingest(engine, [ROOT / "seeds"], utcnow())
    return engine


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(row.state for row in conn.execute(select(schema.deliveries.c.state)))


def send_now(engine: Engine, settings: Settings, now: datetime | None = None,
             manual: bool = True) -> object:
    return asyncio.run(dispatch(engine, settings, now or utcnow(),
                                owner=ledger.lock_owner(), manual=manual))


def test_subscribers_in_three_timezones_get_their_digest_at_their_own_local_time(
        db: Engine, tmp_path: Path, smtp_server: SmtpServer) -> None:
    from datetime import time as clock
    sync_subscribers(db, [
        Subscriber(email="tokyo@example.org", name="", topics=("neural networks",),
                   timezone="Asia/Tokyo", send_time=clock(7, 0), max_papers=2),
        Subscriber(email="berlin@example.org", name="", topics=("neural networks",),
                   timezone="Europe/Berlin", send_time=clock(18, 0), max_papers=2),
        Subscriber(email="newyork@example.org", name="", topics=("neural networks",),
                   timezone="America/New_York", send_time=clock(8, 30), frequency="weekly",
                   weekday=0, max_papers=2)])
    settings = settings_for(smtp_server, tmp_path)
    received: list[tuple[str, datetime]] = []
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # a Saturday
    while now < datetime(2026, 11, 25, 12, 0, tzinfo=UTC):
        before = len(smtp_server.messages)
        send_now(db, settings, now, manual=False)
        received += [(m.rcpt_tos[0], now) for m in smtp_server.messages[before:]]
        now += timedelta(minutes=15)
    times = {who: [f"{t:%a %H:%M}" for w, t in received if w == who] for who, _ in received}
    assert times["tokyo@example.org"] == ["Sat 22:00", "Sun 22:00", "Mon 22:00", "Tue 22:00"]
    assert times["berlin@example.org"] == ["Sat 17:00", "Sun 17:00", "Mon 17:00", "Tue 17:00"]
    assert times["newyork@example.org"] == ["Mon 13:30"]


@pytest.mark.parametrize("minutes_late, queued", [(90, 1), (119, 1), (121, 0), (300, 0)])
def test_the_stale_cutoff_is_read_in_hours_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, minutes_late: int, queued: int) -> None:
    from datetime import time as clock
    monkeypatch.setenv("NEWSLETTER_STALE_AFTER_HOURS", "2")
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{tmp_path / 'n.db'}")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    engine = connect(settings.database_url)
    sync_subscribers(engine, [Subscriber(email="a@example.org", name="", topics=("GNN",),
                                         timezone="Europe/Berlin", send_time=clock(7, 0))])
    seven_in_berlin = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert plan(engine, settings, seven_in_berlin + timedelta(minutes=minutes_late)).new == queued


def test_a_relay_answering_451_to_every_third_message_still_delivers_one_each(
        db: Engine, tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(rules=[Rule("451 4.3.0 try again later", every=3)])
    sync_subscribers(db, people(30))
    report = send_now(db, settings_for(server, tmp_path))
    assert Counter(server.recipients()) == Counter({f"p{i:04d}@example.org": 1 for i in range(30)})
    assert states(db) == {"sent": 30}
    assert report.sent == 30  # type: ignore[attr-defined]


def test_a_550_fails_that_address_only_and_repeated_ones_suppress_it(
        db: Engine, tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(rules=[Rule("550 5.1.1 mailbox unavailable", at="rcpt",
                                             recipient="p0001@example.org")])
    sync_subscribers(db, people(5))
    settings = settings_for(server, tmp_path, suppress_after=2)
    send_now(db, settings, datetime(2026, 11, 23, 12, tzinfo=UTC))
    assert sorted(server.recipients()) == [f"p{i:04d}@example.org" for i in (0, 2, 3, 4)]
    assert states(db) == {"sent": 4, "failed": 1}
    report = send_now(db, settings, datetime(2026, 11, 24, 12, tzinfo=UTC))
    assert report.suppressed == ["p0001@example.org"]  # type: ignore[attr-defined]
    assert "p0001@example.org" not in [s.email for s in load_subscribers(db)]


def test_a_connection_dropped_after_data_is_uncertain_and_never_resent(
        db: Engine, tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(rules=[Rule(DROP, at="data", recipient="p0002@example.org")])
    sync_subscribers(db, people(4))
    settings = settings_for(server, tmp_path)
    send_now(db, settings)
    send_now(db, settings)
    assert states(db) == {"sent": 3, "uncertain": 1}
    assert "p0002@example.org" not in server.recipients()  # refused, and not tried again
    assert server.rejected and len(server.rejected) == 1


def test_two_sends_at_once_share_the_queue_and_each_person_gets_one_digest(
        db: Engine, tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(data_delay=0.002)
    sync_subscribers(db, people(60))
    settings = settings_for(server, tmp_path, claim_batch=5, smtp_connections=2)

    async def both() -> list[object]:
        now = utcnow()
        return await asyncio.gather(*(dispatch(db, settings, now, owner=ledger.lock_owner(),
                                               manual=True) for _ in range(2)))
    first, second = asyncio.run(both())
    assert Counter(server.recipients()) == Counter(
        {f"p{i:04d}@example.org": 1 for i in range(60)})
    assert first.sent + second.sent == 60  # type: ignore[attr-defined]
    assert first.sent and second.sent  # type: ignore[attr-defined]
    assert states(db) == {"sent": 60}


def write_people(folder: Path, n: int, send_time: str = "07:00") -> None:
    folder.mkdir()
    (folder / "list.toml").write_text("".join(
        f'[[subscriber]]\nemail = "p{i:04d}@example.org"\ntopics = ["neural networks"]\n'
        f'max_papers = 3\nsend_time = "{send_time}"\n\n' for i in range(n)))


def cli_env(tmp_path: Path, server: SmtpServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NEWSLETTER_") or k == "NEWSLETTER_SEMANTIC"}
    env.update(server.env(), NEWSLETTER_DATABASE_URL=f"sqlite:///{tmp_path / 'n.db'}",
               NEWSLETTER_SUBSCRIBERS_DIR=str(tmp_path / "subs"),
               NEWSLETTER_SECRET_KEY="s" * 16, **extra)
    return env


def test_a_send_killed_midway_and_run_again_gives_everyone_exactly_one_digest(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(data_delay=0.004)
    write_people(tmp_path / "subs", 500)
    env = cli_env(tmp_path, server, NEWSLETTER_SMTP_CONNECTIONS="1")
    command = [sys.executable, "-m", "newsletter", "send"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert server.wait_for(lambda s: len(s.messages) >= 120, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert len(server.messages) < 500, "the kill came too late to test anything"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    counts = Counter(server.recipients())
    engine = connect(env["NEWSLETTER_DATABASE_URL"])
    uncertain = {row.email for row in ledger.problems(engine, limit=1000)
                 if row.state == "uncertain"}
    assert len(uncertain) <= 1, uncertain
    everyone = {f"p{i:04d}@example.org" for i in range(500)}
    assert {who for who in everyone if counts[who] != 1} <= uncertain
    assert all(counts[who] <= 1 for who in everyone)
    assert states(engine)["sent"] == 500 - len(uncertain)
    assert rerun.returncode == 0, rerun.stderr


def test_two_schedulers_on_one_database_never_send_an_edition_twice(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(data_delay=0.002)
    due = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%H:%M")
    write_people(tmp_path / "subs", 200, send_time=due)
    env = cli_env(tmp_path, server, NEWSLETTER_DISPATCH_INTERVAL_SECONDS="0.5")
    runners = [subprocess.Popen([sys.executable, "-m", "newsletter", "run"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        assert server.wait_for(lambda s: len(s.messages) >= 200, timeout=90)
        time.sleep(2)  # several more ticks of both schedulers: nothing more may arrive
    finally:
        for runner in runners:
            runner.send_signal(signal.SIGTERM)
        outputs = [runner.communicate(timeout=30) for runner in runners]
    assert Counter(server.recipients()) == Counter(
        {f"p{i:04d}@example.org": 1 for i in range(200)})
    assert [runner.returncode for runner in runners] == [0, 0], outputs
