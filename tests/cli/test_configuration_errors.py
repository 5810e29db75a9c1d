"""A wrong setting stops the command with exit code 2 and one line naming it, before anything
changes: no database made, no subscriber removed, no mail sent."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Callable

import pytest
from commands import deliveries, process_env, run, statuses
from smtp_server import SmtpServer


def test_a_missing_subscribers_folder_stops_send_and_removes_nobody(tmp_path: Path) -> None:
    env = process_env(tmp_path)
    assert run(env, "send").returncode == 0
    before = statuses(env)
    assert before and set(before.values()) == {"active"}
    result = run({**env, "NEWSLETTER_SUBSCRIBERS_DIR": str(tmp_path / "nonexistent")}, "send",
                 "--date", "2026-11-30")
    assert result.returncode == 2, result.stdout
    assert f"NEWSLETTER_SUBSCRIBERS_DIR: no such folder {tmp_path / 'nonexistent'}" in result.stderr
    assert "Traceback" not in result.stderr
    assert statuses(env) == before


def test_subscribers_check_on_a_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    result = run(process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(tmp_path / "nope")),
                 "subscribers", "check")
    assert result.returncode == 2
    assert "no such folder" in result.stderr


@pytest.mark.parametrize(("name", "value", "says"), [
    ("NEWSLETTER_SMTP_PORT", "70000", "less than or equal to 65535"),
    ("NEWSLETTER_SMTP_PORT", "0", "greater than or equal to 1"),
    ("NEWSLETTER_SMTP_TIMEOUT", "0", "greater than 0"),
    ("NEWSLETTER_SMTP_TIMEOUT", "-5", "greater than 0"),
    ("NEWSLETTER_RETRY_CAP_SECONDS", "0.1", "shorter than the first one"),
    ("NEWSLETTER_DATABASE_URL", "mysql://root@localhost/news", "'mysql' databases are not "
                                                                "supported"),
    ("NEWSLETTER_SOURCES", '["seeds", ', "not a JSON list"),
    ("NEWSLETTER_SOURCES", '{"a": 1}', "not a JSON list"),
])
def test_a_bad_setting_stops_the_command_before_anything_changes(
        tmp_path: Path, name: str, value: str, says: str) -> None:
    env = process_env(tmp_path, NEWSLETTER_SMTP_HOST="127.0.0.1", NEWSLETTER_SMTP_SECURITY="none")
    result = run({**env, name: value}, "send")
    assert result.returncode == 2, result.stdout
    assert f"setting {name}: " in result.stderr and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "n.db").exists()


def test_one_source_given_without_json_brackets_is_read_as_that_source(tmp_path: Path) -> None:
    # `NEWSLETTER_SOURCES=/data/feeds` is what people write; it was a pydantic traceback.
    seeds = Path(__file__).resolve().parents[2] / "seeds"
    result = run(process_env(tmp_path, NEWSLETTER_SOURCES=str(seeds)), "send")
    assert result.returncode == 0, result.stderr
    assert "Catalog: 392 papers from 5 files." in result.stderr


def test_a_one_character_secret_key_is_refused_before_any_mail_goes_out(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    env = process_env(tmp_path, **smtp_server.env(), NEWSLETTER_SECRET_KEY="x")
    result = run(env, "send")
    assert result.returncode == 2
    assert "NEWSLETTER_SECRET_KEY: 1 characters" in result.stderr
    assert "at least 16" in result.stderr
    assert smtp_server.messages == [] and deliveries(env) == []


def test_serve_refuses_a_one_character_secret_key(tmp_path: Path) -> None:
    result = run(process_env(tmp_path, NEWSLETTER_SECRET_KEY="x"), "serve", "--port", "1")
    assert result.returncode == 2
    assert "NEWSLETTER_SECRET_KEY: 1 characters" in result.stderr


def test_the_outbox_still_works_with_no_settings_at_all(tmp_path: Path) -> None:
    env = process_env(tmp_path)
    del env["NEWSLETTER_SECRET_KEY"]
    assert run(env, "send", "--to", "ada@example.org").returncode == 0


def test_a_relay_echoing_auth_plain_never_gets_the_password_printed(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(auth=("bob", "right-password"), echo_auth=True)
    password = "wrong-but-real-looking-password"
    env = process_env(tmp_path, **server.env(password=password))
    result = run(env, "send")
    assert result.returncode == 2
    assert "refused the login for user 'bob'" in result.stderr
    blob = base64.b64encode(f"\0bob\0{password}".encode()).decode()
    for leak in (password, blob, blob[:24], base64.b64encode(password.encode()).decode()):
        assert leak not in result.stderr + result.stdout
    assert "***" in result.stderr
