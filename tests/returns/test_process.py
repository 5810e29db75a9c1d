"""What comes back, end to end: digests sent over SMTP to a real aiosmtpd, their returns put in a
real IMAP server (dovecot) or a Maildir, read by `newsletter bounces`, applied once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from commands import clean_env, cli
from imap_server import ImapServer
from samples import sample
from smtp_server import SmtpServer
from sqlalchemy import func, select

from newsletter.compose.tokens import bounce_address, make
from newsletter.models import Subscriber
from newsletter.returns.mailboxes import MaildirMailbox
from newsletter.returns.process import process_returns
from newsletter.settings import Settings
from newsletter.store import schema
from newsletter.store.engine import connect
from newsletter.store.subscribers import load_subscribers, sync_subscribers

SECRET = "test-secret-returns"  # 16+ characters, as `send` over SMTP requires
BOUNCES = "bounces@newsletter.test"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return {**clean_env(tmp_path, monkeypatch), "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_BOUNCE_ADDRESS": BOUNCES,
            "NEWSLETTER_UNSUBSCRIBE_MAILTO": "unsubscribe@newsletter.test"}


def statuses(env: dict[str, str]) -> dict[str, str]:
    with connect(env["NEWSLETTER_DATABASE_URL"]).connect() as conn:
        rows = conn.execute(select(schema.subscribers.c.email, schema.subscribers.c.status))
        return {email: status for email, status in rows}


def returns_recorded(env: dict[str, str]) -> int:
    with connect(env["NEWSLETTER_DATABASE_URL"]).connect() as conn:
        return conn.scalar(select(func.count()).select_from(schema.returns)) or 0


def returns_for(server: SmtpServer) -> list[bytes]:
    """A hard bounce for ada (by VERP), a soft one for emmy (by Message-ID alone), a complaint
    about alan, sofia's mailto unsubscribe, and a reply nobody can act on."""
    sent = {m.rcpt_tos[0]: m for m in server.messages}

    def about(email: str) -> dict[str, str]:
        message = sent[email].message
        mailto = str(message["List-Unsubscribe"]).split("<mailto:")[1].split(">")[0]
        return {"VERP": sent[email].mail_from, "RECIPIENT": email,
                "MESSAGE_ID": str(message["Message-ID"]), "TOKEN": mailto.split("%20")[1]}

    return [sample("dsn_hard", **about("ada@example.org")),
            sample("dsn_soft", **about("emmy@example.org")),
            sample("arf_abuse", **about("alan@example.org")),
            sample("mailto_unsubscribe", **about("sofia@example.org")),
            sample("not_a_report")]


def test_returns_through_imap_change_the_right_subscribers_once_and_the_next_send_skips_them(
        env: dict[str, str], smtp_server: SmtpServer, imap_server: ImapServer) -> None:
    env = {**env, **smtp_server.env(), **imap_server.env(), "NEWSLETTER_SOFT_BOUNCE_LIMIT": "1"}
    assert cli(env, "send", "--date", "2026-11-23").returncode == 0
    assert all(m.mail_from.startswith("bounces+") for m in smtp_server.messages)  # VERP
    everyone = set(statuses(env))
    returned = returns_for(smtp_server)
    for raw in returned:
        imap_server.deliver(raw)

    first = cli(env, "bounces")
    assert first.returncode == 1, first.stderr  # the reply is left for a person
    assert "hard bounce ada@example.org (edition 2026-11-23, 5.1.1): suppressed" in first.stderr
    assert "soft bounce emmy@example.org" in first.stderr
    assert "left in place" in first.stderr and "neither a bounce" in first.stderr
    expected = {"ada@example.org": "bounced", "emmy@example.org": "bounced",
                "alan@example.org": "unsubscribed", "sofia@example.org": "unsubscribed"}
    after = statuses(env)
    assert {e: s for e, s in after.items() if s != "active"} == expected
    assert imap_server.messages("INBOX") == [returned[-1]]
    assert len(imap_server.messages("Processed")) == 4
    assert returns_recorded(env) == 4

    # The same four come back (a move that failed after the record, a provider resending):
    for raw in returned[:4]:
        imap_server.deliver(raw)
    second = cli(env, "bounces")
    assert second.stderr.count(": seen before") == 4
    assert statuses(env) == after and returns_recorded(env) == 4
    assert len(imap_server.messages("INBOX")) == 1  # still only the reply

    smtp_server.messages.clear()
    assert cli(env, "send", "--date", "2026-11-24").returncode == 0
    got = set(smtp_server.recipients())
    assert got and not got & set(expected) and got <= everyone - set(expected)

    status = cli({**env, "COLUMNS": "200"}, "status")
    assert status.returncode == 0, status.stderr
    returns_table = status.stdout.split("Returns")[1]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]]
            for line in returns_table.splitlines() if line.count("│") == 7]
    # edition: hard bounces, soft bounces, complaints, mailto unsubscribes, suppressed
    assert {row[0]: row[1:] for row in rows} == {
        "2026-11-23": ["1", "1", "0", "0", "2"],
        "2026-W48": ["0", "0", "1", "0", "1"],  # alan's is a weekly digest
        "(none)": ["0", "0", "0", "1", "1"],  # a mailto request names no edition
    }


def test_returns_in_a_maildir_are_moved_and_counted_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    engine = connect(url)
    sync_subscribers(engine, [Subscriber(email="emmy@reader.test", name="E", topics=("PDE",))])
    maildir = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    settings = Settings(database_url=url, secret_key=SECRET, returns_maildir=maildir,
                        soft_bounce_limit=2)

    def soft(edition: str) -> bytes:
        verp = bounce_address(SECRET, BOUNCES, 1, edition)
        raw = sample("dsn_soft", VERP=verp, RECIPIENT="emmy@reader.test",
                     MESSAGE_ID="<none@newsletter.test>")
        # the relay returned it to the VERP address this time; each report has its own id
        return raw.replace(b"To: bounces@newsletter.test", f"To: {verp}".encode()).replace(
            b"<e8b2c0d1-", f"<{edition}-".encode())

    now = datetime(2026, 11, 25, tzinfo=UTC)
    (maildir / "new" / "1.soft.reader").write_bytes(soft("2026-11-23"))
    (maildir / "new" / "2.unknown.reader").write_bytes(sample("not_a_report"))
    report = process_returns(engine, settings, SECRET, now)
    assert [(h.report.kind, h.email, h.edition, h.effect) for h in report.handled] == [
        ("soft-bounce", "emmy@reader.test", "2026-11-23", "counted")]
    assert [key for key, _ in report.left] == ["new/2.unknown.reader"]
    assert sorted(p.name for p in (maildir / "new").iterdir()) == ["2.unknown.reader"]
    assert [p.name for p in (maildir / ".Processed" / "cur").iterdir()] == ["1.soft.reader:2,S"]

    (maildir / "new" / "3.soft.reader").write_bytes(soft("2026-11-23"))  # the same one again
    (maildir / "new" / "4.soft.reader").write_bytes(soft("2026-11-24"))  # another edition
    report = process_returns(engine, settings, SECRET, now)
    assert [h.effect for h in report.handled] == ["seen before", "suppressed"]
    with engine.connect() as conn:
        assert conn.scalar(select(schema.subscribers.c.status)) == "bounced"


def test_a_maildir_that_is_not_one_is_a_configuration_error(tmp_path: Path) -> None:
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="NEWSLETTER_RETURNS_MAILDIR"):
        with MaildirMailbox(tmp_path / "nothing"):
            pass


def test_a_wrong_imap_password_stops_with_the_setting_to_change(
        env: dict[str, str], imap_server: ImapServer) -> None:
    result = cli({**env, **imap_server.env(), "NEWSLETTER_RETURNS_IMAP_PASSWORD": "wrong"},
                 "bounces")
    assert result.returncode == 2
    assert "refused the login" in result.stderr and "NEWSLETTER_RETURNS_IMAP" in result.stderr
    assert "wrong" not in result.stderr.replace("NEWSLETTER_RETURNS_IMAP", "")


def test_check_opens_the_mailbox_of_returns(env: dict[str, str], smtp_server: SmtpServer,
                                           imap_server: ImapServer) -> None:
    good = cli({**env, **smtp_server.env(), **imap_server.env()}, "check")
    assert good.returncode == 0, good.stderr
    assert "Opened the mailbox of returns, IMAP returns@127.0.0.1" in good.stdout
    bad = cli({**env, **smtp_server.env(), **imap_server.env(),
               "NEWSLETTER_RETURNS_IMAP_FOLDER": "Nowhere"}, "check")
    assert bad.returncode == 1 and "NEWSLETTER_RETURNS_IMAP_FOLDER" in bad.stderr


def test_bounces_without_a_mailbox_says_what_to_set(env: dict[str, str]) -> None:
    result = cli(env, "bounces")
    assert result.returncode == 2 and "NEWSLETTER_RETURNS_IMAP_HOST" in result.stderr


def test_newsletter_run_reads_the_mailbox_of_returns_on_its_own(
        env: dict[str, str], tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True)
    assert cli(env, "subscribers", "list").returncode == 0  # the files in the database
    engine = connect(env["NEWSLETTER_DATABASE_URL"])
    grace = load_subscribers(engine, email="grace@example.org")[0]
    engine.dispose()
    token = make(SECRET, "unsubscribe", grace.link_id, grace.link_key)  # her digests' link
    (maildir / "new" / "1.unsubscribe").write_bytes(
        sample("mailto_unsubscribe", RECIPIENT="grace@example.org", TOKEN=token))
    runner = subprocess.Popen([sys.executable, "-m", "newsletter", "run"],
                              env={**os.environ, **env, "NEWSLETTER_RETURNS_MAILDIR": str(maildir)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processed = maildir / ".Processed" / "cur"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (processed.exists() and any(processed.iterdir())):
            time.sleep(0.2)
    finally:
        runner.send_signal(signal.SIGTERM)
        _, log = runner.communicate(timeout=60)
    assert statuses(env)["grace@example.org"] == "unsubscribed", log
    assert "returns: unsubscribe grace@example.org" in log
