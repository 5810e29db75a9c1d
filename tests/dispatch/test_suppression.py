"""Suppression through the CLI: only refused addresses are suppressed, an operator can undo it,
and what is wrong on our side (a full disk, an outage) never unsubscribes anybody."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable

from commands import database, deliveries, people, process_env, run, statuses, write_people
from smtp_server import Rule, SmtpServer

from newsletter.store.subscribers import unsubscribe

GONE = "p001@example.org"


def test_a_refused_address_is_suppressed_and_reactivate_brings_it_back(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    refusing = smtp_server_factory(rules=[Rule("550 5.1.1 no such user", at="rcpt",
                                               recipient=GONE)])
    healthy = smtp_server_factory()
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs",
                                                                          people(3))),
                    NEWSLETTER_SUPPRESS_AFTER="2")
    for day in ("2026-11-23", "2026-11-24"):
        result = run({**env, **refusing.env()}, "send", "--date", day)
        assert result.returncode == 1
    assert "suppressed p001@example.org" in result.stderr
    assert statuses(env)[GONE] == "bounced"
    again = run(env, "subscribers", "reactivate", GONE)
    assert again.returncode == 0, again.stderr
    assert f"{GONE} is active again" in again.stdout
    assert statuses(env)[GONE] == "active"
    # its two refusals were forgiven: one more does not suppress it at once
    assert run({**env, **refusing.env()}, "send", "--date", "2026-11-25").returncode == 1
    assert statuses(env)[GONE] == "active"
    assert run({**env, **healthy.env()}, "send", "--date", "2026-11-26").returncode == 0
    assert Counter(healthy.recipients())[GONE] == 1


def test_reactivate_leaves_an_unsubscribed_address_alone(tmp_path: Path) -> None:
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs",
                                                                          people(2))))
    assert run(env, "subscribers", "list").returncode == 0
    engine = database(env)
    unsubscribe(engine, GONE)
    engine.dispose()
    result = run(env, "subscribers", "reactivate", GONE)
    assert result.returncode == 2
    assert "is unsubscribed, not bounced" in result.stderr
    assert statuses(env)[GONE] == "unsubscribed"
    unknown = run(env, "subscribers", "reactivate", "nobody@example.org")
    assert unknown.returncode == 2 and "is not a subscriber" in unknown.stderr


def test_an_outbox_that_cannot_be_written_stops_the_run_and_suppresses_nobody(
        tmp_path: Path) -> None:
    """A full disk (here: the edition's folder is a file) is our problem, not the reader's."""
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs",
                                                                          people(3))),
                    NEWSLETTER_SUPPRESS_AFTER="1", NEWSLETTER_MAX_ATTEMPTS="1")
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    for day in ("2026-11-23", "2026-11-24"):
        (outbox / day).write_text("in the way")
        result = run(env, "send", "--date", day)
        assert result.returncode == 2, result.stderr
        assert f"cannot write {outbox / day}" in result.stderr
    assert set(statuses(env).values()) == {"active"}
    (outbox / "2026-11-24").unlink()
    result = run(env, "send", "--date", "2026-11-24")
    assert result.returncode == 0, result.stderr
    assert len(list((outbox / "2026-11-24").glob("*.eml"))) == 3
    assert Counter(state for _, edition, state in deliveries(env)
                   if edition == "2026-11-24") == {"sent": 3}
