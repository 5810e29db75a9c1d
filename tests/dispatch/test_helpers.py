"""`send --workers N` starts helper processes: their outcomes are counted once, in the run that
started them, and they stop when that run dies, even by kill -9."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from commands import people, process_env, start, write_people
from smtp_server import SmtpServer


def helpers_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--helper-of" in command and str(parent).encode() in command:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def sent_in(stdout: str) -> int:
    found = re.search(r"Sent (\d+) digests", " ".join(stdout.split()))
    assert found, stdout
    return int(found.group(1))


def test_two_sends_with_helpers_at_once_report_each_digest_once(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(data_delay=0.01)
    env = process_env(tmp_path, **server.env(), NEWSLETTER_CLAIM_BATCH="5",
                    NEWSLETTER_SMTP_CONNECTIONS="2",
                    NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs", people(80))))
    assert start(env, "ingest").wait(timeout=120) == 0
    runs = [start(env, "send", "--workers", "2") for _ in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in runs]
    assert [proc.returncode for proc in runs] == [0, 0], outputs
    assert Counter(server.recipients()) == Counter({email: 1 for email in people(80)})
    assert sum(sent_in(out) for out, _ in outputs) == 80  # not 80 plus the other run's


def test_a_helper_stops_when_its_send_is_killed(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(data_delay=0.25)
    env = process_env(tmp_path, **server.env(), NEWSLETTER_SMTP_CONNECTIONS="1",
                    NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs", people(60))))
    sending = start(env, "send", "--workers", "2")
    try:
        assert server.wait_for(lambda s: len(s.messages) >= 4, timeout=120)
        (helper,) = helpers_of(sending.pid)
        sending.send_signal(signal.SIGKILL)
        sending.communicate(timeout=30)
        deadline = time.monotonic() + 30
        while alive(helper):
            assert time.monotonic() < deadline, "the helper kept sending"
            time.sleep(0.1)
    finally:
        for pid in helpers_of(sending.pid):
            os.kill(pid, signal.SIGKILL)
    assert len(server.messages) < 30  # it stopped; it did not drain the queue alone
