"""Uncertain deliveries, end to end: each one listed by `status` with its Message-ID (written
before the message goes), and settled by a person with `deliveries resolve`."""

from __future__ import annotations

import re
import signal
from collections import Counter
from pathlib import Path
from typing import Callable

from commands import database, people, process_env, run, start, write_people
from smtp_server import DROP, Rule, SmtpServer

from newsletter.dispatch import ledger

UNCERTAIN_LINE = re.compile(r"id (\d+)  (\S+)  edition (\S+)  Message-ID (<[^>]+>)")


def test_status_lists_every_uncertain_delivery_and_resolve_settles_each(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    dropping = smtp_server_factory(rules=[Rule(DROP, at="data")])  # no reply after the body
    healthy = smtp_server_factory()
    everyone = people(25)
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs",
                                                                          everyone)),
                    NEWSLETTER_BREAKER_PAUSE_SECONDS="0.05")  # 25 drops in a row trip it
    result = run({**env, **dropping.env()}, "send")
    assert result.returncode == 1, result.stderr  # 0 would hide 25 digests nobody can vouch for
    status = run(env, "status")
    listed = {m.group(2): (int(m.group(1)), m.group(4))
              for m in UNCERTAIN_LINE.finditer(status.stdout)}
    assert set(listed) == set(everyone)  # all of them, not the first 20
    assert "25 uncertain" in status.stdout
    engine = database(env)
    stored = {e.email: (e.id, e.message_id)
              for e in ledger.problems(engine, limit=None, states=("uncertain",))}
    engine.dispose()
    assert stored == listed

    arrived, lost = everyone[0], everyone[1]
    assert run(env, "deliveries", "resolve", str(listed[arrived][0]), "--sent").returncode == 0
    requeued = run(env, "deliveries", "resolve", str(listed[lost][0]), "--requeue")
    assert requeued.returncode == 0, requeued.stderr
    assert listed[lost][1] in requeued.stdout
    again = run(env, "deliveries", "resolve", str(listed[arrived][0]), "--requeue")
    assert again.returncode == 2 and "is sent, not uncertain" in again.stderr
    result = run({**env, **healthy.env()}, "send")
    assert healthy.recipients() == [lost]  # the others stay for a person to decide
    status = run(env, "status")
    assert "23 uncertain" in status.stdout


def test_a_delivery_cut_off_by_kill_9_is_uncertain_with_its_message_id(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    slow = smtp_server_factory(data_delay=30)  # holds the first message until the kill
    env = process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs",
                                                                          people(3))),
                    NEWSLETTER_SMTP_CONNECTIONS="1", **slow.env())
    sending = start(env, "send")
    try:
        assert slow.wait_for(lambda s: s.in_data > 0, timeout=60), "no message reached DATA"
    finally:
        sending.send_signal(signal.SIGKILL)
        sending.communicate(timeout=30)
    healthy = smtp_server_factory()
    assert run({**env, **healthy.env()}, "send").returncode in (0, 1)
    status = run(env, "status")
    (line,) = UNCERTAIN_LINE.findall(status.stdout)
    assert line[1] == "p000@example.org" and re.fullmatch(r"<[^@<>]+@[^@<>]+>", line[3])
    assert Counter(healthy.recipients()) == {"p001@example.org": 1, "p002@example.org": 1}
