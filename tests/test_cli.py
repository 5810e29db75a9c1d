"""The CLI end to end: real processes, a real SMTP server, a real database file."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from typing import Callable

import pytest
from commands import SECRET, clean_env, cli
from smtp_server import READY, Rule, SmtpServer
from sqlalchemy import select
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.compose import tokens
from newsletter.store import schema
from newsletter.store.engine import connect, utcnow
from newsletter.store.subscribers import link_owner

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return clean_env(tmp_path, monkeypatch)


def invoke(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def sent_papers(env: dict[str, str]) -> dict[tuple[str, str], set[str]]:
    engine = connect(env["NEWSLETTER_DATABASE_URL"])
    query = (select(schema.subscribers.c.email, schema.deliveries.c.edition,
                    schema.sent_papers.c.paper_id)
             .join(schema.deliveries, schema.deliveries.c.id == schema.sent_papers.c.delivery_id)
             .join(schema.subscribers,
                   schema.subscribers.c.id == schema.sent_papers.c.subscriber_id))
    result: dict[tuple[str, str], set[str]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            result.setdefault((row.email, row.edition), set()).add(row.paper_id)
    return result


@pytest.mark.parametrize("command", [
    [], ["send"], ["run"], ["serve"], ["preview"], ["ingest"], ["subscribers"],
    ["subscribers", "check"],
    ["subscribers", "list"], ["recommend"], ["status"], ["worker"], ["db"], ["db", "status"],
    ["db", "upgrade"], ["check"], ["bounces"]])
def test_every_command_explains_itself_with_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output) > 300


def test_send_delivers_a_complete_digest_to_each_subscriber_over_smtp(
        env: dict[str, str], smtp_server: SmtpServer) -> None:
    result = cli({**env, **smtp_server.env()}, "send")
    assert result.returncode == 0, result.stderr
    assert "Sent " in result.stdout and f"{smtp_server.port}" in result.stdout
    sent = sent_papers(env)
    assert len(smtp_server.messages) == len(sent) >= 6
    assert sorted(smtp_server.recipients()) == sorted(email for email, _ in sent)
    for received in smtp_server.messages:
        check_digest(received.message, received.rcpt_tos[0], env)


def link_owner_of(env: dict[str, str], purpose: str, token: str) -> tuple[str, str | None]:
    """Whose link ``token`` is (their address) and what it is about, checked as `serve` does."""
    parsed = tokens.parse(token, purpose)
    assert parsed is not None, token
    owner = link_owner(connect(env["NEWSLETTER_DATABASE_URL"]), parsed.link_id)
    assert owner is not None
    assert tokens.check(SECRET, purpose, parsed, owner.link_key, owner.retired,
                        utcnow()) == "current"
    return owner.email, parsed.item


def check_digest(message: email.message.EmailMessage, recipient: str,
                 env: dict[str, str]) -> None:
    for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id"):
        assert message[header], header
    assert recipient in message["To"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert https.startswith("http") and mailto.startswith("mailto:")
    token = https.rsplit("/", 1)[1]
    assert link_owner_of(env, "unsubscribe", token)[0] == recipient
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    body = html.get_content()
    assert https in body and https in text.get_content()
    assert "/preferences/" in body
    assert body.count('style="') > 10  # CSS inlined into the elements
    assert "@media" in body  # responsive and dark-mode rules kept in <style>


def test_the_default_run_writes_one_eml_per_subscriber_to_the_outbox(env: dict[str, str]) -> None:
    result = invoke(env, "send")
    assert result.exit_code == 0, result.output
    files = sorted(Path(env["NEWSLETTER_OUTBOX_DIR"]).rglob("*.eml"))
    assert len(files) == len(sent_papers(env)) >= 6
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        check_digest(message, message["To"].addresses[0].addr_spec, env)  # type: ignore[union-attr]


def test_a_second_send_for_the_same_edition_sends_nothing(
        env: dict[str, str], smtp_server: SmtpServer) -> None:
    assert cli({**env, **smtp_server.env()}, "send").returncode == 0
    first = len(smtp_server.messages)
    again = cli({**env, **smtp_server.env()}, "send")
    assert again.returncode == 0, again.stderr
    assert "Nothing to send" in again.stdout
    assert len(smtp_server.messages) == first


def test_the_next_edition_never_repeats_a_paper(env: dict[str, str]) -> None:
    assert invoke(env, "send", "--date", "2026-11-23").exit_code == 0
    second = invoke(env, "send", "--date", "2026-11-24")
    assert second.exit_code == 0, second.output
    sent = sent_papers(env)
    day1 = {who: ids for (who, edition), ids in sent.items() if edition == "2026-11-23"}
    day2 = {who: ids for (who, edition), ids in sent.items() if edition == "2026-11-24"}
    assert day2, "the catalog has more than one day's worth of papers for someone"
    for who, ids in day2.items():
        assert not ids & day1.get(who, set()), who


def test_a_dry_run_sends_and_records_nothing(env: dict[str, str], smtp_server: SmtpServer) -> None:
    result = cli({**env, **smtp_server.env()}, "send", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Dry run" in result.stdout and "would go to" in result.stdout
    assert smtp_server.messages == [] and sent_papers(env) == {}


def test_a_refused_address_is_recorded_and_the_others_are_sent(
        env: dict[str, str], smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(rules=[Rule("550 5.1.1 no such user", at="rcpt",
                                             recipient="ada@example.org")])
    result = cli({**env, **server.env()}, "send")
    assert result.returncode == 1
    assert "ada@example.org" in result.stderr and "550 5.1.1 no such user" in result.stderr
    assert "ada@example.org" not in server.recipients() and len(server.messages) >= 5
    status = cli(env, "status")
    assert "failed" in status.stdout and "no such user" in status.stdout
    rerun = cli({**env, **server.env()}, "send")  # permanent: not retried, nothing else resent
    assert "Nothing to send" in rerun.stdout


def test_a_temporary_failure_is_retried_with_backoff_in_the_same_run(
        env: dict[str, str], smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(rules=[Rule("451 4.3.0 try later", recipient="ada@example.org",
                                             times=2)])
    result = cli({**env, **server.env(), "NEWSLETTER_RETRY_BASE_SECONDS": "0.05"}, "send")
    assert result.returncode == 0, result.stderr
    assert server.recipients().count("ada@example.org") == 1
    assert len(server.rejected) == 2
    status = cli(env, "status")
    assert "No failures, retries or uncertain deliveries" in status.stdout


def test_a_wrong_smtp_port_stops_with_one_clear_line(env: dict[str, str]) -> None:
    result = cli({**env, **READY, "NEWSLETTER_SMTP_HOST": "127.0.0.1",
                  "NEWSLETTER_SMTP_PORT": "1", "NEWSLETTER_SMTP_SECURITY": "none"}, "send")
    assert result.returncode == 2
    assert "127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
    assert "NEWSLETTER_SMTP_PORT" in result.stderr


def test_preview_shows_exactly_what_send_sends(env: dict[str, str], tmp_path: Path) -> None:
    html, text = tmp_path / "p.html", tmp_path / "p.txt"
    assert invoke(env, "preview", "ada@example.org", "--out", str(html)).exit_code == 0
    assert invoke(env, "preview", "ada@example.org", "--text", "--out", str(text)).exit_code == 0
    assert invoke(env, "send", "--to", "ada@example.org").exit_code == 0
    (eml,) = Path(env["NEWSLETTER_OUTBOX_DIR"]).rglob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    text_part, html_part = message.iter_parts()  # type: ignore[attr-defined]
    # Parts decoded from the CRLF wire format keep their CRLFs; the preview files are text.
    assert html_part.get_content().replace("\r\n", "\n") == html.read_text()
    assert text_part.get_content().replace("\r\n", "\n") == text.read_text()


def test_recommend_prints_the_ranking_as_json(env: dict[str, str]) -> None:
    import json
    result = invoke(env, "recommend", "--topic", "GNN", "--topic", "PINNs", "--limit", "7",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    ranking = json.loads(result.stdout)
    assert len(ranking) == 7
    assert all({"id", "title", "score", "reason"} <= set(item) for item in ranking)
    assert [r["score"] for r in ranking] == sorted((r["score"] for r in ranking), reverse=True)
    assert all("matches:" in r["reason"] for r in ranking)


def test_recommend_says_which_topic_matches_nothing(env: dict[str, str]) -> None:
    result = invoke(env, "recommend", "--topic", "GNN", "--topic", "network intrusion detection")
    assert result.exit_code == 0, result.output
    assert "No paper in the catalog matches 'network intrusion detection'" in result.output
    assert "matches 'GNN'" not in result.output


def test_ingest_reports_a_malformed_entry_with_file_and_line_and_keeps_the_rest(
        env: dict[str, str], tmp_path: Path) -> None:
    page = tmp_path / "page.txt"
    page.write_text("Mar 11\n\nA Good Paper on Graph Neural Networks\n\n" + "Graph neural "
                    "networks are studied here in depth. " * 12 + "\n\nA title with no abstract\n")
    result = invoke(env, "ingest", str(page))
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output and "1 rejected" in result.output
    assert re.search(r"page\.txt:7", result.output)
    assert "0 new" in invoke(env, "ingest", str(page)).output


def test_hostile_catalog_text_is_escaped_in_the_email(env: dict[str, str], tmp_path: Path) -> None:
    seeds = tmp_path / "hostile"
    seeds.mkdir()
    (seeds / "page.txt").write_text(
        "Mar 11\n\nGraph Neural Networks <script>alert(1)</script>\n\n"
        + "Graph neural networks <img src=x onerror=alert(1)> are studied. " * 10 + "\n")
    env = {**env, "NEWSLETTER_SOURCES": f'["{seeds}"]'}
    assert invoke(env, "send", "--to", "ada@example.org").exit_code == 0
    (eml,) = Path(env["NEWSLETTER_OUTBOX_DIR"]).rglob("*.eml")
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_subscribers_check_names_each_bad_entry(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "list.toml").write_text(
        '[[subscriber]]\nemail = "ok@example.org"\ntopics = ["GNN"]\n\n'
        '[[subscriber]]\nemail = "eve@example.org"\nname = "Eve\\nBcc: x@example.org"\n'
        'topics = ["GNN"]\n')
    result = invoke({**env, "NEWSLETTER_SUBSCRIBERS_DIR": str(folder)}, "subscribers", "check")
    assert result.exit_code == 1
    assert "list.toml:5" in result.output and "single line" in result.output
    assert "1 valid subscribers" in result.output


def test_with_click_tracking_on_paper_links_go_through_the_signed_redirect(
        env: dict[str, str]) -> None:
    assert invoke({**env, "NEWSLETTER_CLICK_TRACKING": "true"}, "send", "--to",
                  "ada@example.org").exit_code == 0
    (eml,) = Path(env["NEWSLETTER_OUTBOX_DIR"]).rglob("*.eml")
    html = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default) \
        .get_body(("html",)).get_content()  # type: ignore[union-attr]
    clicks = re.findall(r'href="http://localhost:8000/click/([^"]+)"', html)
    papers = sent_papers(env)[("ada@example.org", next(iter(sent_papers(env)))[1])]
    assert {link_owner_of(env, "click", t)[1] for t in clicks} == papers


# -- preflight ---------------------------------------------------------------------------------


def test_send_over_smtp_with_a_localhost_base_url_refuses_before_anything_happens(
        env: dict[str, str], smtp_server: SmtpServer) -> None:
    smtp = {**smtp_server.env(), "NEWSLETTER_BASE_URL": "http://localhost:8000"}
    for command in (["send"], ["worker", "--drain"]):
        result = cli({**env, **smtp}, *command)
        assert result.returncode == 2, result.stderr
        assert "NEWSLETTER_BASE_URL" in result.stderr and "not https" in result.stderr
        assert "Traceback" not in result.stderr
    assert smtp_server.messages == [] and sent_papers(env) == {}
    with connect(env["NEWSLETTER_DATABASE_URL"]).connect() as conn:  # nothing queued either
        assert conn.execute(select(schema.deliveries)).first() is None


def test_send_over_smtp_refuses_every_unready_setting_at_once(
        env: dict[str, str], smtp_server: SmtpServer) -> None:
    unready = {**env, **smtp_server.env(), "NEWSLETTER_FROM_ADDRESS": "papers@example.org",
               "NEWSLETTER_LIST_ID": "list.example.com"}
    del unready["NEWSLETTER_SECRET_KEY"]
    result = cli(unready, "send")
    assert result.returncode == 2
    for setting in ("NEWSLETTER_FROM_ADDRESS", "NEWSLETTER_LIST_ID", "NEWSLETTER_SECRET_KEY"):
        assert setting in result.stderr
    assert smtp_server.messages == []


def test_a_dry_run_over_smtp_prints_what_send_would_refuse_and_sends_nothing(
        env: dict[str, str], smtp_server: SmtpServer) -> None:
    smtp = {**smtp_server.env(), "NEWSLETTER_BASE_URL": "http://localhost:8000"}
    result = cli({**env, **smtp}, "send", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "refused NEWSLETTER_BASE_URL" in result.stderr
    assert "Dry run" in result.stdout and smtp_server.messages == []


def test_the_outbox_needs_no_preflight_with_the_default_base_url(env: dict[str, str]) -> None:
    result = cli(env, "send")
    assert result.returncode == 0, result.stderr
    assert "refused" not in result.stderr
    assert list(Path(env["NEWSLETTER_OUTBOX_DIR"]).rglob("*.eml"))


def test_check_names_each_setting_to_change_and_exits_1_over_smtp(
        env: dict[str, str], smtp_server: SmtpServer) -> None:
    bad = cli({**env, **smtp_server.env(), "NEWSLETTER_BASE_URL": "https://127.0.0.1",
               "NEWSLETTER_SMTP_HOST": "localhost"}, "check")
    assert bad.returncode == 1
    assert "refused NEWSLETTER_BASE_URL" in bad.stderr and "Not ready" in bad.stderr
    good = cli({**env, **smtp_server.env()}, "check")
    assert good.returncode == 0, good.stderr
    assert "Logged in to SMTP" in good.stdout and "Ready" in good.stdout
    assert "warning NEWSLETTER_DKIM_KEY_FILE" in good.stderr  # a warning does not stop it
    outbox = cli(env, "check")  # the defaults: the outbox goes, SMTP would not
    assert outbox.returncode == 0 and "refused NEWSLETTER_BASE_URL" in outbox.stderr
    assert "`send` would refuse" in outbox.stdout


def test_check_reports_a_relay_that_refuses_the_login(
        env: dict[str, str], smtp_server_factory: Callable[..., SmtpServer]) -> None:
    server = smtp_server_factory(auth=("user", "right"))
    result = cli({**env, **server.env(password="wrong")}, "check")
    assert result.returncode == 1
    assert "NEWSLETTER_SMTP_USERNAME" in result.stderr


def test_preflight_warn_sends_to_a_test_relay_on_purpose_and_says_so(
        env: dict[str, str], smtp_server: SmtpServer) -> None:
    result = cli({**env, **smtp_server.env(), "NEWSLETTER_BASE_URL": "http://localhost:8000",
                  "NEWSLETTER_PREFLIGHT": "warn"}, "send")
    assert result.returncode == 0, result.stderr
    assert "refused NEWSLETTER_BASE_URL" in result.stderr and "sending anyway" in result.stderr
    assert smtp_server.messages


def test_a_database_another_process_keeps_locked_stops_with_one_line_saying_to_rerun(
        env: dict[str, str], tmp_path: Path) -> None:
    import sqlite3

    connect(env["NEWSLETTER_DATABASE_URL"]).dispose()  # the tables, in WAL mode
    holder = sqlite3.connect(tmp_path / "n.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # a tool, or a stuck process, holding the write lock
    try:
        result = cli(env, "send")
    finally:
        holder.close()
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    # Not "check NEWSLETTER_DATABASE_URL": the setting is right, the database is busy.
    assert "locked by another process" in line and "run it again" in line
    assert "NEWSLETTER_DATABASE_URL" not in line
    assert cli(env, "send").returncode == 0  # the lock gone, the rerun sends
