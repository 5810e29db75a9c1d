"""Text from files, feeds, relays and the command line prints exactly as it was typed: rich
markup (``[/x]``), escapes (``[[subscriber]]``) and emoji codes (``:100:``) in it are not read."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from commands import process_env, run
from smtp_server import Rule, SmtpServer

HOSTILE = "[/x][bold]"


def test_subscribers_check_prints_entries_with_markup_as_typed(tmp_path: Path) -> None:
    folder = tmp_path / "subs"
    folder.mkdir()
    padding = "# a comment\n" * 99  # the entry below starts on line 100: "a.toml:100:"
    (folder / "a.toml").write_text(
        f'{padding}[[subscriber]]\nemail = "{HOSTILE}"\ntopics = ["GNN"]\n')
    (folder / "b.toml").write_text('stray text\n[[subscriber]]\nemail = "ok@example.org"\n'
                                   'topics = ["GNN"]\n')
    result = run(process_env(tmp_path, NEWSLETTER_SUBSCRIBERS_DIR=str(folder)),
                 "subscribers", "check")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"a.toml:100: email: invalid address '{HOSTILE}'" in result.stderr
    assert "a [[subscriber]] table" in result.stderr
    assert "1 valid subscribers" in result.stdout


def test_send_to_an_unknown_address_with_markup_names_it_as_typed(tmp_path: Path) -> None:
    result = run(process_env(tmp_path), "send", "--to", HOSTILE)
    assert result.returncode == 2
    assert f"{HOSTILE} is not an active subscriber" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_smtp_reply_with_markup_is_reported_as_sent_by_the_relay(
        tmp_path: Path, smtp_server_factory: Callable[..., SmtpServer]) -> None:
    reply = f"550 5.1.1 {HOSTILE} :100: no such user"
    server = smtp_server_factory(rules=[Rule(reply, at="rcpt", recipient="ada@example.org")])
    env = process_env(tmp_path, **server.env())
    result = run(env, "send")
    assert result.returncode == 1, result.stderr
    assert reply in result.stderr and "Traceback" not in result.stderr
    assert len(server.messages) >= 5  # everyone else got their digest
    status = run(env, "status")
    assert status.returncode == 0, status.stderr
    assert reply in status.stdout


def test_ingest_prints_a_rejected_record_with_markup_as_typed(tmp_path: Path) -> None:
    source = tmp_path / "list.jsonl"
    source.write_text('{"title": "Graph networks", "' + HOSTILE + '": 1}\n'
                      '{"title": "Another paper on graphs"}\n')
    result = run(process_env(tmp_path), "ingest", str(source))
    assert result.returncode == 0, result.stderr
    assert f"unknown field '{HOSTILE}'" in result.stderr
    assert "1 new" in result.stdout
