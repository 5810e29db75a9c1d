"""A SQLite database deleted under a running `send` stops it with exit code 2 and says so,
instead of going on into a file that no longer exists and reporting success."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from commands import people, process_env, run, start, write_people
from smtp_server import SmtpServer


def test_deleting_the_database_mid_send_stops_it_and_says_what_was_lost(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(data_delay=0.3)  # ~0.3 s a digest, one connection
    env = process_env(tmp_path, **server.env(), NEWSLETTER_SMTP_CONNECTIONS="1",
                    NEWSLETTER_SUBSCRIBERS_DIR=str(write_people(tmp_path / "subs", people(12))))
    sending = start(env, "send")
    try:
        assert server.wait_for(lambda s: len(s.messages) >= 1, timeout=60)
        for name in ("n.db", "n.db-wal", "n.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        _, errors = sending.communicate(timeout=60)
    finally:
        if sending.poll() is None:
            sending.kill()
    assert len(server.messages) < 12, "the run ended before the file was deleted"
    assert sending.returncode == 2, errors
    assert f"the database file {tmp_path / 'n.db'} was deleted or replaced" in errors
    assert "Traceback" not in errors


def test_a_helper_never_makes_a_new_database_in_place_of_a_missing_one(tmp_path: Path) -> None:
    env = process_env(tmp_path)
    result = run(env, "worker", "--drain", "--helper-of", "1")
    assert result.returncode == 2
    assert f"the database file {tmp_path / 'n.db'} does not exist" in result.stderr
    assert not (tmp_path / "n.db").exists()
