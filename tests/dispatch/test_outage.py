"""A relay outage of three days, then recovery, through `newsletter send --date` against real
SMTP servers: nobody is unsubscribed by it, and everyone gets exactly one digest, the latest."""

from __future__ import annotations

import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable

from commands import database, deliveries, people, process_env, run, statuses, write_people
from smtp_server import READY, Rule, SmtpServer

from newsletter.dispatch.schedule import plan
from newsletter.settings import Settings

DAYS = ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"]
EVERYONE = people(20)
# Retries and the breaker's pause in milliseconds: the test must not wait for minutes.
FAST = {"NEWSLETTER_MAX_ATTEMPTS": "2", "NEWSLETTER_RETRY_BASE_SECONDS": "0.01",
        "NEWSLETTER_RETRY_CAP_SECONDS": "0.05", "NEWSLETTER_BREAKER_PAUSE_SECONDS": "0.05"}


def closed_port() -> int:
    """A loopback port nobody listens on: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def relay_env(server: SmtpServer | None, port: int | None = None) -> dict[str, str]:
    if server is not None:
        return server.env()
    return {"NEWSLETTER_SMTP_HOST": "127.0.0.1", "NEWSLETTER_SMTP_PORT": str(port),
            "NEWSLETTER_SMTP_SECURITY": "none", **READY}


def editions_received(env: dict[str, str]) -> Counter[tuple[str, str]]:
    return Counter((email, edition) for email, edition, state in deliveries(env)
                   if state == "sent")


def day_four_sends_everyone_the_latest_edition_once(env: dict[str, str],
                                                    healthy: SmtpServer) -> None:
    result = run({**env, **relay_env(healthy)}, "send", "--date", DAYS[3])
    assert result.returncode == 0, result.stderr
    assert Counter(healthy.recipients()) == Counter({email: 1 for email in EVERYONE})
    assert editions_received(env) == Counter({(email, DAYS[3]): 1 for email in EVERYONE})
    assert set(statuses(env).values()) == {"active"}  # nobody unsubscribed by the outage


def test_three_days_of_451_to_everything_unsubscribe_nobody_and_day_four_sends_one_each(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    throttled = smtp_server_factory(rules=[Rule("451 4.3.0 try again later", at="rcpt")])
    healthy = smtp_server_factory()
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs",
                                                                          EVERYONE)), **FAST)
    for day in DAYS[:3]:
        result = run({**env, **relay_env(throttled)}, "send", "--date", day)
        assert result.returncode == 1, result.stderr  # failed for this edition, and said so
        assert "gave up after 2 attempts" in result.stderr
        assert "suppressed" not in result.stderr
    assert throttled.messages == []
    assert set(statuses(env).values()) == {"active"}
    day_four_sends_everyone_the_latest_edition_once(env, healthy)


def test_three_days_of_refused_connections_queue_nothing_and_day_four_sends_one_each(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    healthy = smtp_server_factory()
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs",
                                                                          EVERYONE)), **FAST)
    down = relay_env(None, closed_port())
    for day in DAYS[:3]:
        result = run({**env, **down}, "send", "--date", day)
        assert result.returncode == 2, result.stderr
        assert "cannot connect to SMTP server 127.0.0.1" in result.stderr
        assert "Nothing was queued" in result.stderr
    assert deliveries(env) == []  # planning waited for a reachable relay
    day_four_sends_everyone_the_latest_edition_once(env, healthy)


def test_digests_left_pending_for_days_are_skipped_as_stale_not_sent_late(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    """Rows a crashed run left pending on day one are checked again when sent on day four."""
    healthy = smtp_server_factory()
    folder = write_people(tmp_path / "subs", EVERYONE[:5])
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(folder))
    assert run(env, "subscribers", "list").returncode == 0
    assert run(env, "ingest").returncode == 0
    engine = database(env)
    settings = Settings(_env_file=None, database_url=env["NEWSLETTER_DATABASE_URL"],
                        secret_key=env["NEWSLETTER_SECRET_KEY"])
    day_one = datetime(2026, 11, 23, 12, tzinfo=UTC)
    assert plan(engine, settings, day_one, manual=True).new == 5
    engine.dispose()
    result = run({**env, **relay_env(healthy)}, "send", "--date", DAYS[3])
    assert result.returncode == 0, result.stderr
    assert Counter(healthy.recipients()) == Counter({email: 1 for email in EVERYONE[:5]})
    rows = Counter((edition, state) for _, edition, state in deliveries(env))
    assert rows == {(DAYS[0], "skipped"): 5, (DAYS[3], "sent"): 5}
    assert "5 stale" in result.stdout
    status = run(env, "status")
    assert "stale" in status.stdout
